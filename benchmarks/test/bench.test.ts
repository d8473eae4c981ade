import { describe, expect, it } from 'vitest';
import { tf } from '@moebench/backend';
import { parseArgs } from '../src/args.js';
import { denseFfnCase } from '../src/cases/dense-ffn.js';
import { listCases, registerCase, selectCases } from '../src/registry.js';
import { formatTable } from '../src/report.js';
import { runVariant, type VariantRun } from '../src/run.js';
import { VARIANTS, type Variant } from '../src/variants.js';
import { wasmBackendDescription } from './backend-fixture.js';

describe('pnpm bench arguments', () => {
  it('defaults to all cases and variants', () => {
    expect(parseArgs([])).toEqual({
      filters: [],
      variants: ['wasm-native', 'wasm-blas', 'wasm', 'wasm-stock', 'cpu', 'tensorflow'],
      peer: false,
      list: false,
      help: false,
    });
  });

  it('parses filters, variants, name, out', () => {
    const args = parseArgs(['--filter', 'dense,moe', '--filter', 'switch', '--variants', 'wasm,cpu', '--name', 'r1', '--out', 'x.json']);
    expect(args.filters).toEqual(['dense', 'moe', 'switch']);
    expect(args.variants).toEqual(['wasm', 'cpu']);
    expect(args.name).toBe('r1');
    expect(args.out).toBe('x.json');
  });

  it('accepts the wasm-blas variant', () => {
    expect(parseArgs(['--variants', 'wasm-native,wasm-blas']).variants).toEqual(['wasm-native', 'wasm-blas']);
  });

  it('rejects bad variants and flags', () => {
    expect(() => parseArgs(['--variants', 'wasm,gpu'])).toThrow('--variants: unknown variant "gpu". Allowed: wasm-native, wasm-blas, wasm, wasm-stock, cpu, tensorflow');
    expect(() => parseArgs(['--variants', ' , '])).toThrow('--variants: empty list " , ". Allowed: wasm-native, wasm-blas, wasm, wasm-stock, cpu, tensorflow');
    expect(() => parseArgs(['--fast'])).toThrow('Unknown argument "--fast"');
    expect(() => parseArgs(['--out', 'results.csv'])).toThrow('--out must name a .json file, received "results.csv"');
    expect(() => parseArgs(['--filter'])).toThrow('--filter needs a value');
  });
});

describe('bench variants', () => {
  it('wasm-blas keeps native matrix products without fused kernels', () => {
    expect(VARIANTS['wasm-blas']).toMatchObject({ backend: 'wasm', stockKernels: false, nativeKernels: true, fusedKernels: false });
    expect(VARIANTS['wasm-blas'].label).toMatch(/OpenBLAS/);
  });

  it('only wasm-native registers the fused kernels', () => {
    const fused = Object.values(VARIANTS).filter((variant) => variant.fusedKernels).map((variant) => variant.name);
    expect(fused).toEqual(['wasm-native']);
  });

  it('wasm-native and wasm-blas differ only in the fused kernels', () => {
    const settings = (variant: Variant) => ({
      backend: variant.backend,
      stockKernels: variant.stockKernels,
      nativeKernels: variant.nativeKernels,
      timeMs: variant.timeMs,
      iterations: variant.iterations,
      warmup: variant.warmup,
    });
    expect(settings(VARIANTS['wasm-blas'])).toEqual(settings(VARIANTS['wasm-native']));
    expect(VARIANTS['wasm-native'].fusedKernels).toBe(true);
    expect(VARIANTS['wasm-blas'].fusedKernels).toBe(false);
  });
});

describe('bench case registry', () => {
  it('counts dense FFN FLOPs', () => {
    expect(denseFfnCase.flopsPerStep).toBe(3 * 2 * 2 * 2048 * 256 * 1024);
    expect(denseFfnCase.tokensPerStep).toBe(2048);
  });

  it('selects cases by substring', () => {
    registerCase(denseFfnCase);
    expect(listCases().map((benchCase) => benchCase.name)).toContain('dense-ffn');
    expect(selectCases(['dense']).map((benchCase) => benchCase.name)).toEqual(['dense-ffn']);
    expect(() => selectCases(['no-such-case'])).toThrow(/--filter "no-such-case" matches no bench case. Registered cases: .*dense-ffn/);
  });

  it('rejects duplicate or malformed names', () => {
    const stub = { description: '', tokensPerStep: 1, flopsPerStep: 1, prepare: () => ({ run() {}, dispose() {} }) };
    registerCase({ ...stub, name: 'test-duplicate' });
    expect(() => registerCase({ ...stub, name: 'test-duplicate' })).toThrow('Bench case "test-duplicate" is already registered');
    expect(() => registerCase({ ...stub, name: 'Dense FFN' })).toThrow('lowercase words joined by dashes');
  });
});

describe('running a case', () => {
  it('derives throughput from mean time', async () => {
    registerCase({
      name: 'test-tiny-matmul',
      description: '64x64 product',
      tokensPerStep: 64,
      flopsPerStep: 2 * 64 * 64 * 64,
      prepare() {
        const a = tf.ones([64, 64]);
        return {
          run: () => tf.tidy(() => void tf.matMul(a, a, true, false).dataSync()),
          dispose: () => a.dispose(),
        };
      },
    });
    const run = await runVariant({ ...VARIANTS.wasm, timeMs: 0, iterations: 3 }, selectCases(['test-tiny']), () => {});
    const [result] = run.results;
    expect(run.backend?.wasm?.replacementKernels).toBe(true);
    expect(result.status).toBe('measured');
    expect(result.steps).toBeGreaterThanOrEqual(3);
    expect(result.tokensPerSecond).toBeCloseTo(64 / (result.meanMs! / 1000), 6);
    expect(result.gflops).toBeCloseTo((2 * 64 ** 3) / (result.meanMs! / 1000) / 1e9, 9);
  });

  it('records a throwing case as failed', async () => {
    registerCase({
      name: 'test-throwing',
      description: 'throws',
      tokensPerStep: 1,
      flopsPerStep: 1,
      prepare: () => ({ run: () => { throw new Error('boom'); }, dispose() {} }),
    });
    const run = await runVariant({ ...VARIANTS.wasm, timeMs: 0, iterations: 1 }, selectCases(['test-throwing']), () => {});
    expect(run.results).toEqual([{ case: 'test-throwing', variant: 'wasm', status: 'failed', reason: 'boom' }]);
  });

  it('runs cases on stock wasm and cpu only when listed', async () => {
    const unlisted = selectCases(['test-tiny']);
    const run = await runVariant({ ...VARIANTS.cpu, iterations: 1 }, unlisted, () => {});
    expect(run.results).toEqual([]);
  });

  it('prints speedup against stock wasm', () => {
    const runs: VariantRun[] = [
      { variant: 'wasm', results: [{ case: 'c', variant: 'wasm', status: 'measured', steps: 5, meanMs: 100, rmePercent: 2, tokensPerSecond: 20480, gflops: 20 }] },
      { variant: 'wasm-stock', results: [{ case: 'c', variant: 'wasm-stock', status: 'measured', steps: 3, meanMs: 1600, rmePercent: 1, tokensPerSecond: 1280, gflops: 1.25 }] },
      { variant: 'tensorflow', results: [{ case: 'c', variant: 'tensorflow', status: 'skipped', reason: 'Not installed. Details.' }] },
    ];
    const table = formatTable(runs);
    expect(table).toMatch(/c\s+wasm\s+5\s+100\.0 ±2%\s+20,480\s+20\.00\s+16\.0x/);
    expect(table).toMatch(/c\s+wasm-stock\s+3\s+1600\.0 ±1%\s+1,280\s+1\.25\s+1\.0x/);
    expect(table).toContain('c on tensorflow skipped: Not installed.');

    // A case that counts no FLOPs (0 GFLOP/s on both sides) still gets a time ratio, not NaNx.
    const noFlops: VariantRun[] = [
      { variant: 'wasm', results: [{ case: 'copy', variant: 'wasm', status: 'measured', steps: 5, meanMs: 2, rmePercent: 1, tokensPerSecond: 0, gflops: 0 }] },
      { variant: 'wasm-stock', results: [{ case: 'copy', variant: 'wasm-stock', status: 'measured', steps: 2, meanMs: 43, rmePercent: 9, tokensPerSecond: 0, gflops: 0 }] },
    ];
    expect(formatTable(noFlops)).toMatch(/copy\s+wasm\s+5\s+2\.0 ±1%\s+0\s+0\.00\s+21\.5x/);

    const skippedTwice: VariantRun = {
      variant: 'tensorflow',
      results: ['c', 'd'].map((name) => ({ case: name, variant: 'tensorflow', status: 'skipped', reason: 'Not installed. Details.' })),
    };
    expect(formatTable([skippedTwice])).toContain('2 cases on tensorflow skipped: Not installed.');
  });

  it('names native thread counts in the legend', () => {
    const measured = (variant: VariantRun['variant']): VariantRun['results'] => [
      { case: 'c', variant, status: 'measured', steps: 5, meanMs: 100, rmePercent: 2, tokensPerSecond: 20480, gflops: 20 },
    ];
    const runs: VariantRun[] = [
      { variant: 'wasm-native', backend: wasmBackendDescription(3), results: measured('wasm-native') },
      { variant: 'wasm-blas', backend: wasmBackendDescription(1), results: measured('wasm-blas') },
      { variant: 'wasm', backend: wasmBackendDescription(), results: measured('wasm') },
    ];
    const legend = formatTable(runs).split('\nvariants:\n')[1].split('\n');
    expect(legend).toEqual([
      `  wasm-native: ${VARIANTS['wasm-native'].label}, native threads: 3`,
      `  wasm-blas: ${VARIANTS['wasm-blas'].label}, native threads: 1`,
      `  wasm: ${VARIANTS.wasm.label}`,
    ]);
  });

  it('gives no thread count for a native variant that did not start', () => {
    const skipped: VariantRun = {
      variant: 'wasm-native',
      results: [{ case: 'c', variant: 'wasm-native', status: 'skipped', reason: 'Native kernels are not available: addon not built' }],
    };
    const table = formatTable([skipped]);
    expect(table.endsWith(`\nvariants:\n  wasm-native: ${VARIANTS['wasm-native'].label}`)).toBe(true);
    expect(table).not.toContain('native threads');
  });
});

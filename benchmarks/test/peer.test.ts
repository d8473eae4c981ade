import os from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { ARCHITECTURES, createModel, matchCompute } from '@moebench/models';
import { parseArgs } from '../src/args.js';
import { VARIANTS } from '../src/variants.js';
import { wasmBackendDescription } from './backend-fixture.js';
import { formatPeerTable, PEER_CASES, peerModelSpecs, peerThreads, runPeerBenchmark, type PeerReport } from '../src/cases/peer.js';

describe('pnpm bench --peer arguments', () => {
  it('defaults to the wasm kernel sets without cpu', () => {
    expect(parseArgs(['--peer'])).toEqual({
      filters: [],
      variants: ['wasm-native', 'wasm', 'wasm-stock'],
      peer: true,
      list: false,
      help: false,
    });
  });

  it('takes peer variants, a name and an output file', () => {
    const args = parseArgs(['--peer', '--variants', 'wasm-native,cpu', '--name', 'p1', '--out', 'peer.json']);
    expect(args.variants).toEqual(['wasm-native', 'cpu']);
    expect(args.name).toBe('p1');
    expect(args.out).toBe('peer.json');
  });

  it('takes wasm-blas beside wasm-native', () => {
    expect(parseArgs(['--peer', '--variants', 'wasm-native,wasm-blas']).variants).toEqual(['wasm-native', 'wasm-blas']);
  });

  it('rejects variants and flags the peer comparison does not take', () => {
    expect(() => parseArgs(['--variants', 'tensorflow', '--peer'])).toThrow(
      '--variants with --peer: variant "tensorflow" does not run in the peer comparison. Allowed: wasm-native, wasm-blas, wasm, wasm-stock, cpu',
    );
    expect(() => parseArgs(['--peer', '--filter', 'dense'])).toThrow('--filter does not apply to --peer');
    expect(() => parseArgs(['--peer', '--list'])).toThrow('--list and --peer exclude each other');
  });
});

describe('pnpm bench --peer bad --variants', () => {
  const peerAllowed = 'Allowed: wasm-native, wasm-blas, wasm, wasm-stock, cpu';

  // --peer may come before or after --variants, and either way the error lists only the peer variants.
  it.each([
    [['--peer', '--variants', ','], `--variants with --peer: empty list ",". ${peerAllowed}`],
    [['--variants', ',', '--peer'], `--variants with --peer: empty list ",". ${peerAllowed}`],
    [['--peer', '--variants', 'wasm,gpu'], `--variants with --peer: unknown variant "gpu". ${peerAllowed}`],
    [['--variants', 'gpu', '--peer'], `--variants with --peer: unknown variant "gpu". ${peerAllowed}`],
    [['--peer', '--variants', 'cpu,tensorflow'], `--variants with --peer: variant "tensorflow" does not run in the peer comparison. ${peerAllowed}`],
  ])('%j names only peer variants', (argv, message) => {
    let error: unknown;
    try {
      parseArgs(argv);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(message);
  });
});

describe('peer table', () => {
  const report: PeerReport = {
    startedAt: '2026-12-04T21:00:00.000Z',
    pytorch: { torch: '1.13.0', threads: 2, blas: 'openblas', ompWaitPolicy: 'PASSIVE' },
    backends: {},
    rows: [
      { case: 'switch-layer', variant: 'wasm', status: 'measured', steps: 4, meanMs: 250, tokensPerSecond: 8192, gflops: 12.5, ratioToPytorch: 0.25 },
      { case: 'dense-ffn', variant: 'wasm-native', status: 'measured', steps: 40, meanMs: 50, tokensPerSecond: 40960, gflops: 64.42, ratioToPytorch: 1.25 },
      { case: 'dense-ffn', variant: 'pytorch', status: 'measured', steps: 30, meanMs: 62.5, tokensPerSecond: 32768, gflops: 51.54 },
      { case: 'switch-layer', variant: 'pytorch', status: 'measured', steps: 20, meanMs: 62.5, tokensPerSecond: 32768, gflops: 50 },
      { case: 'dense-ffn', variant: 'wasm-stock', status: 'skipped', reason: 'native kernels are not available: addon not built' },
    ],
  };

  it('orders rows by case, PyTorch first, and prints tokens/s, GFLOP/s and the ratio', () => {
    const lines = formatPeerTable(report).split('\n');
    expect(lines[0]).toMatch(/^case\s+variant\s+steps\s+ms\/step\s+tokens\/s\s+GFLOP\/s\s+vs PyTorch$/);
    expect(lines[1]).toMatch(/^-+ +-+ +-+/);
    expect(lines[2]).toMatch(/^dense-ffn\s+pytorch\s+30\s+62\.5\s+32,768\s+51\.54$/);
    expect(lines[3]).toMatch(/^dense-ffn\s+wasm-native\s+40\s+50\.0\s+40,960\s+64\.42\s+1\.25x$/);
    expect(lines[4]).toMatch(/^dense-ffn\s+wasm-stock\s+skipped$/);
    expect(lines[5]).toMatch(/^switch-layer\s+pytorch\s+20\s+62\.5\s+32,768\s+50\.00$/);
    expect(lines[6]).toMatch(/^switch-layer\s+wasm\s+4\s+250\.0\s+8,192\s+12\.50\s+0\.25x$/);
  });

  it('lists the skip reasons and PyTorch facts under the table', () => {
    const table = formatPeerTable(report);
    expect(table).toContain('not measured:\n  dense-ffn on wasm-stock skipped: native kernels are not available: addon not built');
    expect(table).toContain('  pytorch: torch 1.13.0, 2 threads, BLAS openblas, OMP_WAIT_POLICY=PASSIVE');
  });

  it('names each model PyTorch could not run, and the thread source', () => {
    const table = formatPeerTable({
      ...report,
      threads: { threads: 2, source: 'native kernels' },
      rows: [
        ...report.rows,
        { case: 'train-step-base', variant: 'pytorch', status: 'failed', reason: 'ValueError: the PyTorch model has 5 parameters, moebench\'s has 6' },
        { case: 'train-step-hash', variant: 'pytorch', status: 'skipped', reason: 'moe_models.py is not in benchmarks/peer' },
        { case: 'train-step-switch', variant: 'pytorch', status: 'skipped', reason: 'moe_models.py is not in benchmarks/peer' },
      ],
    });
    expect(table).toMatch(/\ntrain-step-base\s+pytorch\s+failed\n/);
    expect(table).toContain("  train-step-base on pytorch failed: ValueError: the PyTorch model has 5 parameters, moebench's has 6");
    expect(table).toContain('  train-step-hash, train-step-switch on pytorch skipped: moe_models.py is not in benchmarks/peer');
    expect(table).toContain('  pytorch: torch 1.13.0, 2 threads (native kernels), BLAS openblas');
  });

  it('names the native thread count of each native variant', () => {
    const table = formatPeerTable({
      ...report,
      backends: { 'wasm-native': wasmBackendDescription(2), wasm: wasmBackendDescription() },
    });
    expect(table).toContain(`\n  wasm-native: ${VARIANTS['wasm-native'].label}, native threads: 2\n`);
    expect(table.endsWith(`\n  wasm: ${VARIANTS.wasm.label}`)).toBe(true);
  });
});

describe('a missing PyTorch', () => {
  it('becomes one skipped row per case with a one-line reason', async () => {
    const report = await runPeerBenchmark({ python: '/nonexistent/python3', variants: [], log: () => {} });
    expect(report.rows.map((row) => [row.case, row.variant, row.status])).toEqual([
      ['dense-ffn', 'pytorch', 'skipped'],
      ['switch-layer', 'pytorch', 'skipped'],
      ...ARCHITECTURES.map((architecture) => [`train-step-${architecture}`, 'pytorch', 'skipped']),
    ]);
    expect(report.pytorch.skipped).toMatch(/^\/nonexistent\/python3 did not start \(.*ENOENT.*\)$/);
    expect(report.pytorch.skipped).not.toContain('\n');
    const table = formatPeerTable(report);
    expect(table).toContain('  pytorch: skipped');
    expect(table).toContain('  every case on pytorch skipped: /nonexistent/python3 did not start');
  });
});

describe('peer model specs', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('match the training-step cases', () => {
    const before = tf.memory().numTensors;
    const specs = peerModelSpecs();
    expect(tf.memory().numTensors).toBe(before);
    expect(specs.map((spec) => spec.architecture)).toEqual([...ARCHITECTURES]);
    for (const spec of specs) {
      const benchCase = PEER_CASES.find((candidate) => candidate.name === `train-step-${spec.architecture}`)!;
      const match = matchCompute(500_000, { vocabSize: 256, dModel: 64, layers: 4, seqLen: 64, heads: 4, experts: 4 }, {
        architectures: [spec.architecture],
      })[spec.architecture];
      expect(spec.config, spec.architecture).toEqual(match.config);
      expect(spec.batch, spec.architecture).toBe(16);
      expect(spec.forwardFlopsPerToken, spec.architecture).toBe(match.accounting.forwardFlopsPerToken);
      expect(benchCase.flopsPerStep, spec.architecture).toBe(3 * 16 * 64 * spec.forwardFlopsPerToken);
      expect(spec.parameters, spec.architecture).toBe(match.accounting.totalParameters);
    }
  });

  it('count the variables of the built model', () => {
    const [transformer] = peerModelSpecs();
    const model = createModel('transformer', transformer.config, { seed: 0 });
    expect(transformer.parameters).toBe(model.trainableVariables.reduce((sum, variable) => sum + variable.size, 0));
    model.dispose();
  });
});

describe('PyTorch thread count', () => {
  it('follows the native kernels first', () => {
    expect(peerThreads(3, { MOEBENCH_NATIVE_THREADS: '5' })).toEqual({ threads: 3, source: 'native kernels' });
  });

  it('falls back to MOEBENCH_NATIVE_THREADS, then the cores', () => {
    expect(peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: '5' })).toEqual({ threads: 5, source: 'MOEBENCH_NATIVE_THREADS' });
    expect(peerThreads(undefined, {})).toEqual({ threads: os.availableParallelism(), source: 'cores' });
    expect(peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: '' })).toEqual({ threads: os.availableParallelism(), source: 'cores' });
  });

  it('rejects an invalid MOEBENCH_NATIVE_THREADS', () => {
    expect(() => peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: 'two' })).toThrow('MOEBENCH_NATIVE_THREADS must be an integer from 1 to 64, received "two"');
    expect(() => peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: '65' })).toThrow('received "65"');
    expect(() => peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: '1e1' })).toThrow('received "1e1"');
    expect(() => peerThreads(undefined, { MOEBENCH_NATIVE_THREADS: '0' })).toThrow('received "0"');
  });
});

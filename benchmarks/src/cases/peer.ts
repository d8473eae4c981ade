/**
 * The PyTorch peer comparison of three steps: the dense FFN, one Switch MoE layer and one dense
 * Transformer training step. PyTorch runs them in benchmarks/peer/peer.py (the system's
 * python3-torch). moebench runs them on each wasm kernel set (native OpenBLAS, moebench's wasm
 * replacements, stock) and on cpu. One table shows tokens/s, GFLOP/s and the ratio to PyTorch.
 *
 * Run it with `pnpm exec tsc -b benchmarks && node benchmarks/dist/cases/peer.js [flags]`
 * (`--help` lists them). The moebench steps are the registered bench cases `dense-ffn`,
 * `switch-layer` and `train-step-transformer`; PyTorch gets the same sizes and FLOP counts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeBackend, initBackend, tf, type BackendDescription } from '@moebench/backend';
import { matchCompute, type ModelConfig } from '@moebench/models';
import { Bench } from 'tinybench';
import type { BenchCase } from '../registry.js';
import { denseFfnCase } from './dense-ffn.js';
import { switchLayerCase } from './moe-layers.js';
import { trainingStepCases } from './models.js';

/** The moebench configurations the peer table compares. */
export const PEER_VARIANTS = ['wasm-native', 'wasm-backend-native', 'wasm', 'wasm-stock', 'cpu'] as const;

/** A peer variant name. */
export type PeerVariant = (typeof PEER_VARIANTS)[number];

const VARIANT_LABELS: Record<PeerVariant, string> = {
  'wasm-native': 'wasm with @moebench/native (OpenBLAS sgemm on the wasm heap)',
  'wasm-backend-native': "wasm with @moebench/backend's own OpenBLAS matmul (nativeKernels: true)",
  wasm: 'wasm with moebench kernels, no native matmul (nativeKernels: false)',
  'wasm-stock': 'wasm with stock kernels',
  cpu: 'tfjs cpu backend',
};

/**
 * The quick suite's Transformer (suites/quick.yaml, as in ./models.ts): byte vocabulary, 16 x 64
 * tokens, 4 blocks of base width 64 with 4 heads, widths compute-matched to 500k forward FLOPs/token.
 */
const QUICK_CONFIG: ModelConfig = { vocabSize: 256, dModel: 64, layers: 4, seqLen: 64, heads: 4, experts: 4 };
const QUICK_BATCH = 16;
const QUICK_TARGET_FLOPS = 500_000;

/** The three cases, by the names peer.py uses. */
export const PEER_CASES: readonly BenchCase[] = [
  denseFfnCase,
  switchLayerCase,
  trainingStepCases.find((benchCase) => benchCase.name === 'train-step-transformer')!,
];

/** The part of @moebench/native the runner uses. */
interface NativeModule {
  registerNativeKernels(): boolean;
  unregisterNativeKernels(): boolean;
  nativeKernelInfo(): { available: boolean; reason?: string; library?: string; threads?: number; threadsFrom?: string };
}

/** Options of `runPeerBenchmark`. */
export interface PeerOptions {
  /** moebench configurations to measure. Default: all but cpu, which takes minutes. */
  variants?: readonly PeerVariant[];
  /** Time budget per case and configuration, seconds, after one warm-up step. Default: 3. */
  seconds?: number;
  /** Python interpreter. Default: MOEBENCH_PYTHON, else the first of python3 and /usr/bin/python3 that imports torch. */
  python?: string;
  /** Progress lines. Default: to stderr. */
  log?: (line: string) => void;
}

/** One measured (or skipped) row of the peer table. */
export interface PeerRow {
  case: string;
  /** `pytorch` or a moebench configuration. */
  variant: 'pytorch' | PeerVariant;
  status: 'measured' | 'skipped' | 'failed';
  reason?: string;
  steps?: number;
  meanMs?: number;
  tokensPerSecond?: number;
  gflops?: number;
  /** tokens/s over PyTorch's on the same case, when PyTorch ran. */
  ratioToPytorch?: number;
}

/** The result of `runPeerBenchmark`, also written as JSON. */
export interface PeerReport {
  startedAt: string;
  /** PyTorch's facts (version, threads, BLAS) or the reason it was skipped. */
  pytorch: { skipped?: string; torch?: string; threads?: number; blas?: string; ompWaitPolicy?: string };
  /** Per moebench configuration: `describeBackend()` and, for wasm-native, the addon's facts. */
  backends: Partial<Record<PeerVariant, { backend?: BackendDescription; native?: unknown }>>;
  rows: PeerRow[];
}

/**
 * Runs peer.py, then the same three steps on each moebench configuration, and returns every row
 * with its ratio to PyTorch's tokens/s. A configuration that cannot run (no addon, no backend) and
 * a missing PyTorch become skipped rows with the reason.
 */
export async function runPeerBenchmark(options: PeerOptions = {}): Promise<PeerReport> {
  const variants = options.variants ?? PEER_VARIANTS.filter((variant) => variant !== 'cpu');
  const seconds = options.seconds ?? 3;
  const log = options.log ?? ((line: string) => console.error(line));
  const report: PeerReport = { startedAt: new Date().toISOString(), pytorch: {}, backends: {}, rows: [] };

  const match = matchCompute(QUICK_TARGET_FLOPS, QUICK_CONFIG, { architectures: ['transformer'] }).transformer;
  const sizes = {
    vocab: QUICK_CONFIG.vocabSize,
    dModel: match.config.dModel,
    ffnHidden: match.config.ffnHidden,
    layers: QUICK_CONFIG.layers,
    heads: QUICK_CONFIG.heads,
    seqLen: QUICK_CONFIG.seqLen,
    batch: QUICK_BATCH,
    forwardFlopsPerToken: match.accounting.forwardFlopsPerToken,
  };
  log(`peer: PyTorch (transformer d=${sizes.dModel}, hidden=${sizes.ffnHidden}) ...`);
  const peer = runPython(options.python, seconds, sizes);
  report.pytorch = peer.facts;
  for (const benchCase of PEER_CASES) {
    const result = peer.results?.find((row) => row.case === benchCase.name);
    report.rows.push(
      result === undefined
        ? { case: benchCase.name, variant: 'pytorch', status: 'skipped', reason: peer.facts.skipped ?? 'peer.py did not report it' }
        : { case: benchCase.name, variant: 'pytorch', status: 'measured', steps: result.steps, meanMs: result.meanMs,
            tokensPerSecond: benchCase.tokensPerStep / (result.meanMs / 1000),
            gflops: benchCase.flopsPerStep / (result.meanMs / 1000) / 1e9 },
    );
  }

  const native = await loadNative();
  await measureVariants(report, variants, seconds, native, log);

  for (const row of report.rows) {
    const reference = report.rows.find((other) => other.case === row.case && other.variant === 'pytorch' && other.status === 'measured');
    if (row.status === 'measured' && reference !== undefined) row.ratioToPytorch = row.tokensPerSecond! / reference.tokensPerSecond!;
  }
  return report;
}

async function measureVariants(
  report: PeerReport,
  variants: readonly PeerVariant[],
  seconds: number,
  native: Awaited<ReturnType<typeof loadNative>>,
  log: (line: string) => void,
): Promise<void> {
  for (const variant of variants) {
    const skip = (reason: string) => {
      log(`peer: ${variant} skipped: ${reason}`);
      for (const benchCase of PEER_CASES) report.rows.push({ case: benchCase.name, variant, status: 'skipped', reason });
    };
    try {
      // Only wasm-backend-native keeps @moebench/backend's own OpenBLAS matmul, so that `wasm`
      // measures the pure wasm kernels and `wasm-native` this package's addon over them.
      const started = await initBackend(variant === 'cpu' ? 'cpu' : 'wasm', {
        stockKernels: variant === 'wasm-stock',
        nativeKernels: variant === 'wasm-backend-native',
      });
      if (variant === 'wasm-backend-native' && started.nativeKernels !== true) {
        const status = (await describeBackend()).wasm?.nativeKernels;
        skip(status?.reason ?? "@moebench/backend's native kernels are not active");
        continue;
      }
    } catch (error) {
      skip(firstLine(error));
      continue;
    }
    if (variant === 'wasm-native') {
      if (!native.ok) {
        skip(native.reason);
        continue;
      }
      if (!native.module.registerNativeKernels()) {
        skip(native.module.nativeKernelInfo().reason ?? 'the addon is not built');
        continue;
      }
    } else if (native.ok) {
      native.module.unregisterNativeKernels();
    }
    report.backends[variant] = {
      backend: await describeBackend(),
      ...(variant === 'wasm-native' && native.ok ? { native: native.module.nativeKernelInfo() } : {}),
    };
    for (const benchCase of PEER_CASES) {
      log(`peer: ${variant}: ${benchCase.name} ...`);
      report.rows.push({ ...(await measure(benchCase, variant === 'cpu' ? 0 : seconds)), case: benchCase.name, variant });
    }
    if (native.ok) native.module.unregisterNativeKernels();
  }
}

/** Formats the rows as one aligned table, with the skip reasons and the variant legend under it. */
export function formatPeerTable(report: PeerReport): string {
  const header = ['case', 'variant', 'steps', 'ms/step', 'tokens/s', 'GFLOP/s', 'vs PyTorch'];
  const order = ['pytorch', ...PEER_VARIANTS];
  const rows = [...report.rows]
    .sort((a, b) => PEER_CASES.findIndex((c) => c.name === a.case) - PEER_CASES.findIndex((c) => c.name === b.case) || order.indexOf(a.variant) - order.indexOf(b.variant))
    .map((row) =>
      row.status !== 'measured'
        ? [row.case, row.variant, row.status, '', '', '', '']
        : [
            row.case,
            row.variant,
            String(row.steps),
            row.meanMs!.toFixed(1),
            Math.round(row.tokensPerSecond!).toLocaleString('en-US'),
            row.gflops!.toFixed(2),
            row.ratioToPytorch === undefined ? '' : `${row.ratioToPytorch.toFixed(2)}x`,
          ],
    );
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd();
  const lines = [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
  const reasons = new Map<string, string>();
  for (const row of report.rows) if (row.status !== 'measured') reasons.set(row.variant, row.reason ?? '');
  if (reasons.size > 0) lines.push('', 'not measured:', ...[...reasons].map(([variant, reason]) => `  ${variant}: ${reason}`));
  const pytorch = report.pytorch.torch === undefined ? 'skipped' : `torch ${report.pytorch.torch}, ${report.pytorch.threads} threads, BLAS ${report.pytorch.blas}, OMP_WAIT_POLICY=${report.pytorch.ompWaitPolicy}`;
  lines.push('', 'variants:', `  pytorch: ${pytorch}`);
  for (const variant of PEER_VARIANTS) if (report.backends[variant] !== undefined) lines.push(`  ${variant}: ${VARIANT_LABELS[variant]}`);
  return lines.join('\n');
}

interface PythonResult {
  case: string;
  steps: number;
  meanMs: number;
}

function runPython(
  python: string | undefined,
  seconds: number,
  sizes: Record<string, number | undefined>,
): { facts: PeerReport['pytorch']; results?: PythonResult[] } {
  const script = fileURLToPath(new URL('../../peer/peer.py', import.meta.url));
  const interpreter = python ?? process.env.MOEBENCH_PYTHON ?? findPython();
  // PyTorch's OpenMP threads spin while they wait. On a machine busy with other processes that
  // slowed its Transformer step from 56 to 1545 ms (2 threads, 2 loaded cores, torch 1.13), so
  // they sleep instead unless OMP_WAIT_POLICY is set.
  const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
  const run = spawnSync(interpreter, [script, '--seconds', String(seconds), '--transformer', JSON.stringify(sizes)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, OMP_WAIT_POLICY: ompWaitPolicy },
  });
  if (run.error !== undefined) return { facts: { skipped: `${interpreter} did not start (${run.error.message})` } };
  if (run.status !== 0) return { facts: { skipped: `peer.py exited with ${run.status}` } };
  const document = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
    skipped?: string;
    torch?: string;
    threads?: number;
    blas?: string;
    results?: PythonResult[];
  };
  if (document.skipped !== undefined) return { facts: { skipped: document.skipped } };
  return { facts: { torch: document.torch, threads: document.threads, blas: document.blas, ompWaitPolicy }, results: document.results };
}

/** Finds the first interpreter that imports torch, else returns python3 (peer.py then reports torch missing). */
function findPython(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return 'python3';
}

async function loadNative(): Promise<{ ok: true; module: NativeModule } | { ok: false; reason: string }> {
  // @moebench/native is not a dependency of the benchmarks package yet: load its build by path.
  const url = new URL('../../../packages/native/dist/index.js', import.meta.url);
  try {
    return { ok: true, module: (await import(url.href)) as NativeModule };
  } catch (error) {
    return { ok: false, reason: `@moebench/native did not load (${firstLine(error)}); build it with pnpm exec tsc -b packages/native` };
  }
}

async function measure(benchCase: BenchCase, seconds: number): Promise<Omit<PeerRow, 'case' | 'variant'>> {
  let step: ReturnType<BenchCase['prepare']> | undefined;
  const before = tf.memory().numTensors;
  try {
    step = benchCase.prepare();
    const prepared = step;
    const bench = new Bench({ time: seconds * 1000, iterations: 3, warmupTime: 0, warmupIterations: 1, throws: true });
    bench.add(benchCase.name, () => prepared.run());
    await bench.run();
    const result = bench.tasks[0].result;
    if (result.state !== 'completed') throw new Error(`tinybench ended in state ${result.state}`);
    const meanMs = result.latency.mean;
    return {
      status: 'measured',
      steps: result.latency.samplesCount,
      meanMs,
      tokensPerSecond: benchCase.tokensPerStep / (meanMs / 1000),
      gflops: benchCase.flopsPerStep / (meanMs / 1000) / 1e9,
    };
  } catch (error) {
    return { status: 'failed', reason: firstLine(error) };
  } finally {
    step?.dispose();
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) throw new Error(`peer: ${benchCase.name} left ${leaked} tensors undisposed`);
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

const USAGE = `Usage: node benchmarks/dist/cases/peer.js [--variants <list>] [--seconds <s>] [--out <file.json>]

  --variants <list>  comma-separated, from: ${PEER_VARIANTS.join(', ')}; default: all but cpu
  --seconds <s>      time budget per case and configuration after one warm-up step; default: 3
  --out <file.json>  also write the rows as JSON here; default: benchmarks/results/peer-<UTC time>.json`;

/** Parses the runner's flags; throws naming the flag, the value and what is allowed. */
export function parsePeerArgs(argv: readonly string[]): PeerOptions & { out?: string; help: boolean } {
  const parsed: PeerOptions & { out?: string; help: boolean } = { help: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value. ${USAGE}`);
      i++;
      return next;
    };
    if (flag === '--help' || flag === '-h') parsed.help = true;
    else if (flag === '--variants') {
      const names = value().split(',').map((name) => name.trim()).filter((name) => name.length > 0);
      for (const name of names) {
        if (!(PEER_VARIANTS as readonly string[]).includes(name)) {
          throw new Error(`--variants: unknown variant "${name}". Allowed: ${PEER_VARIANTS.join(', ')}`);
        }
      }
      if (names.length === 0) throw new Error(`--variants: empty list. Allowed: ${PEER_VARIANTS.join(', ')}`);
      parsed.variants = names as PeerVariant[];
    } else if (flag === '--seconds') {
      const text = value();
      const seconds = Number(text);
      if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`--seconds must be a number >= 0, received "${text}"`);
      parsed.seconds = seconds;
    } else if (flag === '--out') {
      const out = value();
      if (!out.endsWith('.json')) throw new Error(`--out must name a .json file, received "${out}"`);
      parsed.out = out;
    } else if (flag !== '--') throw new Error(`Unknown argument "${flag}". ${USAGE}`);
  }
  return parsed;
}

async function main(argv: string[]): Promise<void> {
  const args = parsePeerArgs(argv);
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const report = await runPeerBenchmark(args);
  console.log('');
  for (const benchCase of PEER_CASES) console.log(`${benchCase.name}: ${benchCase.description}`);
  console.log('');
  console.log(formatPeerTable(report));
  const stamp = report.startedAt.slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  const out = resolve(args.out ?? fileURLToPath(new URL(`../../results/peer-${stamp}.json`, import.meta.url)));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${out}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
  });
}

/**
 * The PyTorch peer comparison: the dense FFN, one Switch MoE layer, and one training step of each
 * of the seven models at the quick suite's size. PyTorch runs them in benchmarks/peer/peer.py (the
 * system's python3-torch) with models built from the same configs. moebench runs them on the
 * backend's kernel sets: wasm with the native kernels, wasm with moebench's wasm replacements only,
 * stock wasm, and optionally cpu. One table shows tokens/s, GFLOP/s and the ratio to PyTorch.
 *
 * Run it with `pnpm bench --peer` (see ../args.ts). The moebench steps are the registered bench
 * cases `dense-ffn`, `switch-layer` and `train-step-<architecture>`. PyTorch gets the same configs,
 * batch and FLOP counts, moebench's parameter count of each model (peer.py fails a model whose
 * count differs) and the quick suite's optimiser settings.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend, MAX_NATIVE_THREADS, tf, type BackendDescription } from '@moebench/backend';
import { ARCHITECTURES, createModel, type Architecture, type ModelConfig } from '@moebench/models';
import { Bench } from 'tinybench';
import type { BenchCase } from '../registry.js';
import { formatLegendLine } from '../report.js';
import { DEFAULT_PEER_VARIANTS, PEER_VARIANTS, VARIANTS, type PeerVariant } from '../variants.js';
import { denseFfnCase } from './dense-ffn.js';
import { switchLayerCase } from './moe-layers.js';
import { QUICK_BATCH, QUICK_TRAINING, quickModelMatch, trainingStepCases } from './models.js';

/** The nine cases, by the names peer.py uses: the two layers, then the seven training steps. */
export const PEER_CASES: readonly BenchCase[] = [denseFfnCase, switchLayerCase, ...trainingStepCases];

/** One `--models` entry of peer.py: the inputs it needs to build and time one model's training step. */
export interface PeerModelSpec {
  architecture: Architecture;
  /** The compute-matched ModelConfig, exactly as the `train-step-<architecture>` case builds the model. */
  config: ModelConfig;
  /** Sequences per step. */
  batch: number;
  /** moebench's trainable parameter count (the sum of `trainableVariables` sizes). */
  parameters: number;
  /** Forward FLOPs per token from moebench's accounting. */
  forwardFlopsPerToken: number;
}

/**
 * Builds the `--models` entries of peer.py for the seven training-step cases. Each model is built
 * once on the active backend (start one first) to count its parameters, then released.
 */
export function peerModelSpecs(): PeerModelSpec[] {
  return ARCHITECTURES.map((architecture) => {
    const match = quickModelMatch(architecture);
    const model = createModel(architecture, match.config, { seed: 0 });
    const parameters = model.trainableVariables.reduce((sum, variable) => sum + variable.size, 0);
    model.dispose();
    return { architecture, config: match.config, batch: QUICK_BATCH, parameters, forwardFlopsPerToken: match.accounting.forwardFlopsPerToken };
  });
}

/** The thread count PyTorch gets, and where it came from. */
export interface PeerThreads {
  threads: number;
  /** `native kernels` (describeBackend of wasm-native), `MOEBENCH_NATIVE_THREADS` or `cores`. */
  source: 'native kernels' | 'MOEBENCH_NATIVE_THREADS' | 'cores';
}

/**
 * Picks PyTorch's intra-op threads: the native kernels' thread count when `nativeThreads` is given,
 * else MOEBENCH_NATIVE_THREADS, else the cores the process may use.
 *
 * @throws RangeError for a MOEBENCH_NATIVE_THREADS that is not an integer from 1 to 64.
 */
export function peerThreads(nativeThreads: number | undefined, env: NodeJS.ProcessEnv = process.env): PeerThreads {
  if (nativeThreads !== undefined) return { threads: nativeThreads, source: 'native kernels' };
  const setting = env.MOEBENCH_NATIVE_THREADS;
  if (setting !== undefined && setting !== '') {
    const threads = /^[0-9]+$/.test(setting) ? Number(setting) : NaN;
    if (!(threads >= 1 && threads <= MAX_NATIVE_THREADS)) {
      throw new RangeError(`MOEBENCH_NATIVE_THREADS must be an integer from 1 to ${MAX_NATIVE_THREADS}, received "${setting}"`);
    }
    return { threads, source: 'MOEBENCH_NATIVE_THREADS' };
  }
  return { threads: os.availableParallelism(), source: 'cores' };
}

/** Options of `runPeerBenchmark`. */
export interface PeerOptions {
  /** moebench kernel sets to measure. Default: `DEFAULT_PEER_VARIANTS` (all but cpu, which takes minutes). */
  variants?: readonly PeerVariant[];
  /** Time budget per case and configuration, seconds, after one warm-up step. Default: 3. */
  seconds?: number;
  /** Python interpreter. Default: MOEBENCH_PYTHON when set (not empty), else the first of python3 and /usr/bin/python3 that imports torch. */
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
  /** The thread count PyTorch was given and where it came from. */
  threads?: PeerThreads;
  /** The `--models` entries peer.py received. */
  models?: PeerModelSpec[];
  /** Per moebench kernel set: `describeBackend()` after its backend started. */
  backends: Partial<Record<PeerVariant, BackendDescription>>;
  rows: PeerRow[];
}

/**
 * Runs the nine steps case by case: PyTorch (peer.py) first, then each moebench configuration, so
 * that the figures a ratio compares are measured seconds apart, not minutes, on a machine whose
 * load changes. Returns every row with its ratio to PyTorch's tokens/s. PyTorch gets the native
 * kernels' thread count (see `peerThreads`). A configuration that cannot run (no addon, no
 * backend), a missing PyTorch and a model peer.py cannot build become skipped rows with the reason.
 */
export async function runPeerBenchmark(options: PeerOptions = {}): Promise<PeerReport> {
  const variants = options.variants ?? DEFAULT_PEER_VARIANTS;
  const seconds = options.seconds ?? 3;
  const log = options.log ?? ((line: string) => console.error(line));
  const report: PeerReport = { startedAt: new Date().toISOString(), pytorch: {}, backends: {}, rows: [] };

  // The native kernels' thread count, when they load, and a backend to count parameters on.
  let nativeThreads: number | undefined;
  let started = false;
  if (variants.includes('wasm-native') || variants.includes('wasm-blas')) {
    try {
      await initBackend('wasm', { stockKernels: false, nativeKernels: true });
      started = true;
      const backend = await describeBackend();
      if (backend.wasm?.nativeKernels.active === true) nativeThreads = backend.wasm.nativeKernels.threads;
    } catch {
      // The first measurement on wasm-native reports why it did not start, as skipped rows.
    }
  }
  if (!started) await initBackend('cpu');
  report.threads = peerThreads(nativeThreads);
  report.models = peerModelSpecs();
  // An empty MOEBENCH_PYTHON counts as unset.
  const interpreter = options.python ?? (process.env.MOEBENCH_PYTHON || findPython());
  log(`peer: PyTorch with ${interpreter}, ${report.threads.threads} threads (${report.threads.source})`);

  const backends = new VariantSwitch(report);
  for (const benchCase of PEER_CASES) {
    if (report.pytorch.skipped === undefined) {
      log(`peer: pytorch: ${benchCase.name} ...`);
      const peer = runPython(interpreter, seconds, report.threads.threads, report.models, benchCase.name);
      report.pytorch = peer.facts;
      report.rows.push(pytorchRow(benchCase, peer));
    } else {
      report.rows.push({ case: benchCase.name, variant: 'pytorch', status: 'skipped', reason: report.pytorch.skipped });
    }
    for (const variant of variants) {
      const unavailable = await backends.activate(variant);
      if (unavailable !== undefined) {
        report.rows.push({ case: benchCase.name, variant, status: 'skipped', reason: unavailable });
        continue;
      }
      log(`peer: ${variant}: ${benchCase.name} ...`);
      report.rows.push({ ...(await measure(benchCase, variant === 'cpu' ? 0 : seconds)), case: benchCase.name, variant });
    }
  }

  for (const row of report.rows) {
    const reference = report.rows.find((other) => other.case === row.case && other.variant === 'pytorch' && other.status === 'measured');
    if (row.variant !== 'pytorch' && row.status === 'measured' && reference !== undefined) row.ratioToPytorch = row.tokensPerSecond! / reference.tokensPerSecond!;
  }
  return report;
}

/** Converts peer.py's result for one case into its table row. */
function pytorchRow(benchCase: BenchCase, peer: { facts: PeerReport['pytorch']; results?: PythonResult[] }): PeerRow {
  const base = { case: benchCase.name, variant: 'pytorch' as const };
  const result = peer.results?.find((row) => row.case === benchCase.name);
  if (result === undefined) return { ...base, status: 'skipped', reason: peer.facts.skipped ?? 'peer.py did not report it' };
  if (result.status !== 'measured') return { ...base, status: result.status, reason: result.reason ?? 'no reason given' };
  return {
    ...base,
    status: 'measured',
    steps: result.steps,
    meanMs: result.meanMs,
    tokensPerSecond: benchCase.tokensPerStep / (result.meanMs! / 1000),
    gflops: benchCase.flopsPerStep / (result.meanMs! / 1000) / 1e9,
  };
}

/**
 * Switches the backend between the peer variants, case after case. It starts a variant only when
 * another one is active and remembers each variant that cannot start, with the reason.
 */
class VariantSwitch {
  private active: PeerVariant | null = null;
  private readonly unavailable = new Map<PeerVariant, string>();

  constructor(private readonly report: PeerReport) {}

  /** Makes `variant` the active backend; returns the reason it cannot run, or undefined when it is active. */
  async activate(variant: PeerVariant): Promise<string | undefined> {
    const known = this.unavailable.get(variant);
    if (known !== undefined) return known;
    if (this.active === variant) return undefined;
    const settings = VARIANTS[variant];
    this.active = null;
    try {
      await initBackend(settings.backend === 'cpu' ? 'cpu' : 'wasm', {
        stockKernels: settings.stockKernels,
        nativeKernels: settings.nativeKernels,
        fusedKernels: settings.fusedKernels,
      });
    } catch (error) {
      this.unavailable.set(variant, firstLine(error));
      return firstLine(error);
    }
    const backend = await describeBackend();
    if (settings.nativeKernels && backend.wasm?.nativeKernels.active !== true) {
      const reason = `native kernels are not available: ${backend.wasm?.nativeKernels.reason ?? 'unknown reason'}`;
      this.unavailable.set(variant, reason);
      return reason;
    }
    this.report.backends[variant] = backend;
    this.active = variant;
    return undefined;
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
  // One note per variant and reason: a backend that did not start skips every case alike, while
  // peer.py may skip or fail single models for their own reasons.
  const notes = new Map<string, string[]>();
  for (const row of report.rows) {
    if (row.status === 'measured') continue;
    const key = `${row.variant} ${row.status}: ${row.reason ?? ''}`;
    notes.set(key, [...(notes.get(key) ?? []), row.case]);
  }
  if (notes.size > 0) {
    lines.push('', 'not measured:');
    for (const [key, cases] of notes) {
      const which = cases.length === PEER_CASES.length ? 'every case' : cases.join(', ');
      lines.push(`  ${which} on ${key}`);
    }
  }
  const source = report.threads === undefined ? '' : ` (${report.threads.source})`;
  const pytorch =
    report.pytorch.torch === undefined
      ? 'skipped'
      : `torch ${report.pytorch.torch}, ${report.pytorch.threads} thread${report.pytorch.threads === 1 ? '' : 's'}${source}, BLAS ${report.pytorch.blas}, OMP_WAIT_POLICY=${report.pytorch.ompWaitPolicy}`;
  lines.push('', 'variants:', `  pytorch: ${pytorch}`);
  for (const variant of PEER_VARIANTS) {
    const backend = report.backends[variant];
    if (backend === undefined) continue;
    lines.push(formatLegendLine(variant, backend));
  }
  return lines.join('\n');
}

interface PythonResult {
  case: string;
  status: 'measured' | 'skipped' | 'failed';
  reason?: string;
  steps?: number;
  meanMs?: number;
}

function runPython(
  interpreter: string,
  seconds: number,
  threads: number,
  models: readonly PeerModelSpec[],
  caseName: string,
): { facts: PeerReport['pytorch']; results?: PythonResult[] } {
  const script = fileURLToPath(new URL('../../peer/peer.py', import.meta.url));
  // PyTorch's OpenMP threads spin while they wait. On a machine busy with other processes that
  // slowed its Transformer step from 56 to 1545 ms (2 threads, 2 loaded cores, torch 1.13), so
  // they sleep instead unless OMP_WAIT_POLICY is set.
  const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
  const args = [
    script,
    '--seconds',
    String(seconds),
    '--threads',
    String(threads),
    '--models',
    JSON.stringify(models),
    '--training',
    JSON.stringify(QUICK_TRAINING),
    '--cases',
    caseName,
  ];
  const run = spawnSync(interpreter, args, {
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

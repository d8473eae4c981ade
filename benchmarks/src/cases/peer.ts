/**
 * The PyTorch peer comparison of three steps: the dense FFN, one Switch MoE layer and one dense
 * Transformer training step. PyTorch runs them in benchmarks/peer/peer.py (the system's
 * python3-torch). moebench runs them on the backend's kernel sets: wasm with the native OpenBLAS
 * matrix products, wasm with moebench's wasm replacements only, stock wasm, and optionally cpu.
 * One table shows tokens/s, GFLOP/s and the ratio to PyTorch.
 *
 * Run it with `pnpm bench --peer` (see ../args.ts). The moebench steps are the registered bench
 * cases `dense-ffn`, `switch-layer` and `train-step-transformer`; PyTorch gets the same sizes and
 * FLOP counts.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend, tf, type BackendDescription } from '@moebench/backend';
import { matchCompute, type ModelConfig } from '@moebench/models';
import { Bench } from 'tinybench';
import type { BenchCase } from '../registry.js';
import { DEFAULT_PEER_VARIANTS, PEER_VARIANTS, VARIANTS, type PeerVariant } from '../variants.js';
import { denseFfnCase } from './dense-ffn.js';
import { switchLayerCase } from './moe-layers.js';
import { trainingStepCases } from './models.js';

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

/** Options of `runPeerBenchmark`. */
export interface PeerOptions {
  /** moebench kernel sets to measure. Default: `DEFAULT_PEER_VARIANTS` (all but cpu, which takes minutes). */
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
  /** Per moebench kernel set: `describeBackend()` after its backend started. */
  backends: Partial<Record<PeerVariant, BackendDescription>>;
  rows: PeerRow[];
}

/**
 * Runs peer.py, then the same three steps on each moebench configuration, and returns every row
 * with its ratio to PyTorch's tokens/s. A configuration that cannot run (no addon, no backend) and
 * a missing PyTorch become skipped rows with the reason.
 */
export async function runPeerBenchmark(options: PeerOptions = {}): Promise<PeerReport> {
  const variants = options.variants ?? DEFAULT_PEER_VARIANTS;
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

  await measureVariants(report, variants, seconds, log);

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
  log: (line: string) => void,
): Promise<void> {
  for (const variant of variants) {
    const settings = VARIANTS[variant];
    const skip = (reason: string) => {
      log(`peer: ${variant} skipped: ${reason}`);
      for (const benchCase of PEER_CASES) report.rows.push({ case: benchCase.name, variant, status: 'skipped', reason });
    };
    try {
      await initBackend(settings.backend === 'cpu' ? 'cpu' : 'wasm', {
        stockKernels: settings.stockKernels,
        nativeKernels: settings.nativeKernels,
      });
    } catch (error) {
      skip(firstLine(error));
      continue;
    }
    const backend = await describeBackend();
    if (settings.nativeKernels && backend.wasm?.nativeKernels.active !== true) {
      skip(`native kernels are not available: ${backend.wasm?.nativeKernels.reason ?? 'unknown reason'}`);
      continue;
    }
    report.backends[variant] = backend;
    for (const benchCase of PEER_CASES) {
      log(`peer: ${variant}: ${benchCase.name} ...`);
      report.rows.push({ ...(await measure(benchCase, variant === 'cpu' ? 0 : seconds)), case: benchCase.name, variant });
    }
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
  for (const variant of PEER_VARIANTS) {
    const backend = report.backends[variant];
    if (backend === undefined) continue;
    const threads = VARIANTS[variant].nativeKernels ? `, OpenBLAS threads: ${backend.wasm?.nativeKernels.threads ?? 'unknown'}` : '';
    lines.push(`  ${variant}: ${VARIANTS[variant].label}${threads}`);
  }
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

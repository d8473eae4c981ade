import { describeBackend, initBackend, tf, type BackendDescription } from '@moebench/backend';
import { Bench } from 'tinybench';
import type { BenchCase } from './registry.js';
import { DEFAULT_CASE_VARIANTS, type Variant, type VariantName } from './variants.js';

/** One case measured (or not) on one variant. */
export interface CaseResult {
  case: string;
  variant: VariantName;
  /** `measured`, or `skipped` when the variant's backend is unavailable, or `failed` when the step threw. */
  status: 'measured' | 'skipped' | 'failed';
  /** Reason the case was skipped or failed. */
  reason?: string;
  /** Measured steps (after one warm-up step where the variant has one). */
  steps?: number;
  /** Mean wall time per step, ms. */
  meanMs?: number;
  /** Relative margin of error of the mean (95%), percent. */
  rmePercent?: number;
  tokensPerSecond?: number;
  gflops?: number;
}

/** The results of one variant, with the backend facts it ran on. */
export interface VariantRun {
  variant: VariantName;
  /** `describeBackend()` after the variant's backend started; absent when it could not start. */
  backend?: BackendDescription;
  results: CaseResult[];
}

/**
 * Starts the variant's backend and measures each case on it with tinybench: one warm-up step when
 * `variant.warmup` is set, then at least `variant.iterations` steps and `variant.timeMs` of them. A
 * backend that cannot start skips every case with the reason, and so does `wasm-native` when the
 * native kernels are not built. A case that throws is recorded as failed and the run goes on.
 */
export async function runVariant(
  variant: Variant,
  cases: readonly BenchCase[],
  log: (line: string) => void,
): Promise<VariantRun> {
  const applicable = cases.filter((benchCase) => (benchCase.variants ?? DEFAULT_CASE_VARIANTS).includes(variant.name));
  const skipAll = (reason: string): VariantRun => {
    log(`${variant.name}: skipped (the reason is in the table's notes and the JSON)`);
    return {
      variant: variant.name,
      results: applicable.map((benchCase) => ({ case: benchCase.name, variant: variant.name, status: 'skipped', reason })),
    };
  };
  try {
    await initBackend(variant.backend, {
      stockKernels: variant.stockKernels,
      nativeKernels: variant.nativeKernels,
      fusedKernels: variant.fusedKernels,
    });
  } catch (error) {
    return skipAll(firstLine(error));
  }

  const backend = await describeBackend();
  if (variant.nativeKernels && backend.wasm?.nativeKernels.active !== true) {
    return skipAll(`Native kernels are not available: ${backend.wasm?.nativeKernels.reason ?? 'unknown reason'}`);
  }
  const results: CaseResult[] = [];
  for (const benchCase of applicable) {
    log(`${variant.name}: ${benchCase.name} ...`);
    results.push(await measure(benchCase, variant));
  }
  return { variant: variant.name, backend, results };
}

async function measure(benchCase: BenchCase, variant: Variant): Promise<CaseResult> {
  const base = { case: benchCase.name, variant: variant.name };
  let step: ReturnType<BenchCase['prepare']> | undefined;
  const tensorsBefore = tf.memory().numTensors;
  try {
    step = benchCase.prepare();
    const prepared = step;
    const bench = new Bench({
      time: variant.timeMs,
      iterations: variant.iterations,
      warmup: variant.warmup,
      warmupTime: 0,
      warmupIterations: 1,
      throws: true,
    });
    bench.add(benchCase.name, () => prepared.run());
    await bench.run();

    const result = bench.tasks[0].result;
    if (result.state !== 'completed') throw new Error(`tinybench ended in state ${result.state}`);
    const meanMs = result.latency.mean;
    return {
      ...base,
      status: 'measured',
      steps: result.latency.samplesCount,
      meanMs,
      rmePercent: result.latency.rme,
      tokensPerSecond: benchCase.tokensPerStep / (meanMs / 1000),
      gflops: benchCase.flopsPerStep / (meanMs / 1000) / 1e9,
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: firstLine(error) };
  } finally {
    step?.dispose();
    const leaked = tf.memory().numTensors - tensorsBefore;
    if (leaked !== 0) throw new Error(`Bench case ${benchCase.name} left ${leaked} tensors undisposed on ${variant.name}`);
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

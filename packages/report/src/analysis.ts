/**
 * The comparison itself: time-to-target speedups of sMLP over each baseline on three x-axes,
 * perplexity at equal training time, throughput and routing health, each over the seeds.
 */
import { judgeClaim, type ClaimVerdict } from './claim.js';
import { displayName } from './labels.js';
import { groupBy, routingHealth, type RoutingHealth } from './routing-health.js';
import { seedFigure, type SeedFigure } from './statistics.js';
import { findCrossing, perplexityAt, type CurvePoint } from './time-to-target.js';
import type { ModelRun, ReportData } from './types.js';

/** The x-axes a time-to-target is measured on. */
export const AXES = ['time', 'tokens', 'flops'] as const;

/** An x-axis: training seconds, training tokens, or training FLOPs (3 x forward FLOPs per token x tokens). */
export type Axis = (typeof AXES)[number];

/** Options of `analyse`. */
export interface AnalysisOptions {
  /** Name of the model whose speedup over the others is measured. Default: the model of architecture `smlp`. */
  subject?: string;
  /** Margin around 1 a single-seed speedup must clear for a verdict (default 0.1); see `judgeClaim`. */
  singleSeedMargin?: number;
  /** Token share of one expert that raises a router-collapse warning (default 0.5); see `routingHealth`. */
  collapseThreshold?: number;
}

/** Figures of one model over its seeds. */
export interface ModelSummary {
  name: string;
  architecture: string;
  seeds: number[];
  /** Status of each seed's run, in `seeds` order. */
  statuses: string[];
  totalParameters: number;
  activeParametersPerToken: number;
  forwardFlopsPerToken: number;
  /** Seeds with at least one evaluation. */
  evaluatedSeeds: number;
  finalPerplexity: SeedFigure | null;
  finalBitsPerByte: SeedFigure | null;
  /** Training seconds at the end of training (last step, or last evaluation without steps). */
  trainingSeconds: SeedFigure | null;
  trainingTokens: SeedFigure | null;
  /** Training tokens per training second over the whole run. */
  tokensPerSecond: SeedFigure | null;
  /** Perplexity at the common training time `Analysis.equalTimeSeconds`. */
  perplexityAtEqualTime: SeedFigure | null;
}

/** Time-to-target of sMLP and one baseline on one axis, at the baseline's final perplexity. */
export interface AxisSpeedup {
  axis: Axis;
  /** Baseline's x at its own final perplexity (its first crossing of it). */
  baseline: SeedFigure | null;
  /** sMLP's x at the baseline's final perplexity, over the seeds where it reached it. */
  subject: SeedFigure | null;
  /** Baseline x / sMLP x, over the seeds where sMLP reached the target and both crossings are known. */
  speedup: SeedFigure | null;
  /** Seeds where sMLP reached the target. */
  reachedSeeds: number;
  /**
   * Seeds where sMLP reached the target but no ratio is measured: a crossing lies at or before a
   * first evaluation made after the start (only bounded), or sMLP's crossing is at x = 0.
   */
  unmeasuredSeeds: number[];
}

/** sMLP against one baseline. */
export interface Comparison {
  baseline: string;
  architecture: string;
  /**
   * Seeds where both models have evaluations and neither run failed; speedups pair the runs of the
   * same seed. A failed run stopped early, so its last perplexity is no target and it reaches none.
   */
  pairedSeeds: number[];
  /** The baseline's final perplexity (the target), over the paired seeds. */
  target: SeedFigure | null;
  speedups: Record<Axis, AxisSpeedup>;
  /** Verdict on the sMLP paper's claim (`PAPER_CLAIM`), judged on the time speedup. */
  claim: ClaimVerdict;
  /** Scale of the measurement, in words: parameters, FLOPs, tokens and time of both models. */
  scale: string;
}

/** Result of `analyse`. */
export interface Analysis {
  /** The model measured against the others, or null when the run has none. */
  subject: string | null;
  /** Number of seeds of the run (the most of any model). */
  seedCount: number;
  /**
   * Training seconds of the last evaluation of the shortest finished (`done`) run, or of the shortest
   * evaluated run when none finished; perplexities are compared there.
   */
  equalTimeSeconds: number | null;
  models: ModelSummary[];
  comparisons: Comparison[];
  routing: RoutingHealth[];
  /** Things a reader must know: skipped, diverged or failed runs, unpaired seeds, a single seed. */
  notes: string[];
  singleSeedMargin: number;
  collapseThreshold: number;
}

/** Builds the curve of a run on one axis from its evaluations. */
export function curveOf(run: ModelRun, axis: Axis): CurvePoint[] {
  return run.evaluations.map((evaluation) => ({
    x: axisValue(run, axis, evaluation.trainingSeconds, evaluation.tokens),
    perplexity: evaluation.perplexity,
  }));
}

/** Returns the value on `axis` of a point with the given training seconds and tokens. */
export function axisValue(run: ModelRun, axis: Axis, trainingSeconds: number, tokens: number): number {
  if (axis === 'time') return trainingSeconds;
  if (axis === 'tokens') return tokens;
  return 3 * run.forwardFlopsPerToken * tokens;
}

/**
 * Analyses a run: per-model figures, sMLP's speedup over every other model on time, tokens and
 * FLOPs, the claim verdicts, and routing health. Runs of one model at several seeds are grouped by
 * name, and speedups pair sMLP and baseline runs that share a seed.
 */
export function analyse(data: ReportData, options: AnalysisOptions = {}): Analysis {
  const singleSeedMargin = options.singleSeedMargin ?? 0.1;
  const collapseThreshold = options.collapseThreshold ?? 0.5;
  checkAnalysisOptions(singleSeedMargin, collapseThreshold);
  validateData(data);

  const groups = groupBy(data.models, (run) => run.name);
  const subject = options.subject ?? data.models.find((run) => run.architecture === 'smlp')?.name ?? null;
  if (options.subject !== undefined && !groups.has(options.subject)) {
    throw new Error(`analyse: subject "${options.subject}" is not a model of the run; models: ${[...groups.keys()].join(', ')}.`);
  }

  const notes: string[] = [];
  const seedCount = Math.max(0, ...[...groups.values()].map((runs) => runs.length));
  if (seedCount === 1) notes.push('One seed per model: the figures have no confidence interval, and verdicts use a fixed margin.');
  for (const run of data.models) {
    if (run.status === 'failed') {
      notes.push(failureNote(run));
    } else if (run.status !== 'done') {
      const reason = run.statusReason ? `: ${run.statusReason}` : '';
      notes.push(`${displayName(run.name)} (seed ${run.seed}) is ${run.status}${reason}.`);
    }
    if (run.evaluations.length === 0) {
      notes.push(`${displayName(run.name)} (seed ${run.seed}) has no evaluation and is left out of the comparisons.`);
    }
  }

  // A run that diverged or was interrupted early would pull the common time down to where it stopped.
  const evaluatedRuns = data.models.filter((run) => run.evaluations.length > 0);
  const finishedRuns = evaluatedRuns.filter((run) => run.status === 'done');
  const equalTimeRuns = finishedRuns.length > 0 ? finishedRuns : evaluatedRuns;
  const equalTimeSeconds =
    equalTimeRuns.length === 0 ? null : Math.min(...equalTimeRuns.map((run) => lastOf(run.evaluations).trainingSeconds));

  const models = [...groups.values()].map((runs) => summariseModel(runs, equalTimeSeconds));
  const comparisons: Comparison[] = [];
  if (subject === null) {
    notes.push('The run has no sMLP model, so there are no speedups to report.');
  } else {
    for (const [name, runs] of groups) {
      if (name !== subject) comparisons.push(compare(groups.get(subject)!, runs, singleSeedMargin, notes));
    }
  }

  const routing = data.models.flatMap((run) => routingHealth(run, collapseThreshold) ?? []);
  return { subject, seedCount, equalTimeSeconds, models, comparisons, routing, notes, singleSeedMargin, collapseThreshold };
}

function compare(subjectRuns: ModelRun[], baselineRuns: ModelRun[], singleSeedMargin: number, notes: string[]): Comparison {
  const baseline = baselineRuns[0];
  const subjectBySeed = new Map(subjectRuns.filter((run) => run.evaluations.length > 0).map((run) => [run.seed, run]));
  const pairs = baselineRuns
    .filter((run) => run.evaluations.length > 0 && subjectBySeed.has(run.seed))
    .map((run) => ({ baseline: run, subject: subjectBySeed.get(run.seed)! }));
  const unpaired = baselineRuns.filter((run) => run.evaluations.length > 0 && !subjectBySeed.has(run.seed));
  if (unpaired.length > 0) {
    notes.push(
      `${displayName(baseline.name)} seeds ${unpaired.map((run) => run.seed).join(', ')} have no sMLP run of the same seed and are not compared.`,
    );
  }

  // A failed run stopped early, so it sets no target and reaches none. Its seed is left out of the
  // speedups, and it makes the verdict inconclusive as an interrupted run does.
  const measured = pairs.filter((pair) => pair.subject.status !== 'failed' && pair.baseline.status !== 'failed');
  const targets = measured.map((pair) => lastOf(pair.baseline.evaluations).perplexity);
  const speedups = {} as Record<Axis, AxisSpeedup>;
  for (const axis of AXES) {
    const baselineX: number[] = [];
    const subjectX: number[] = [];
    const ratios: number[] = [];
    const unmeasuredSeeds: number[] = [];
    measured.forEach((pair, index) => {
      // The baseline always reaches its own final perplexity, at the latest at its last evaluation.
      const baselineCrossing = findCrossing(curveOf(pair.baseline, axis), targets[index])!;
      baselineX.push(baselineCrossing.x);
      const subjectCrossing = findCrossing(curveOf(pair.subject, axis), targets[index]);
      if (subjectCrossing === null) return;
      subjectX.push(subjectCrossing.x);
      // A crossing bounded by a late first evaluation, or one at x = 0, gives no ratio.
      if (baselineCrossing.beforeFirstPoint || subjectCrossing.beforeFirstPoint || subjectCrossing.x === 0) {
        unmeasuredSeeds.push(pair.subject.seed);
        return;
      }
      ratios.push(baselineCrossing.x / subjectCrossing.x);
    });
    speedups[axis] = {
      axis,
      baseline: figureOrNull(baselineX),
      subject: figureOrNull(subjectX),
      speedup: figureOrNull(ratios),
      reachedSeeds: subjectX.length,
      unmeasuredSeeds,
    };
  }

  const stopped = (run: ModelRun): boolean => run.status === 'interrupted' || run.status === 'running' || run.status === 'failed';
  const unfinished = pairs
    .flatMap((pair) => [pair.subject, pair.baseline])
    .filter(stopped)
    .map((run) => `${displayName(run.name)} (seed ${run.seed}) ${run.status === 'failed' ? 'failed' : `is ${run.status}`}`);
  const diverged = pairs
    .filter((pair) => pair.subject.status === 'diverged')
    .map((pair) => `seed ${pair.subject.seed}${pair.subject.statusReason ? `: ${pair.subject.statusReason}` : ''}`);
  const claim = judgeClaim(
    {
      speedup: speedups.time.speedup,
      pairedSeeds: pairs.length,
      reachedSeeds: speedups.time.reachedSeeds,
      unmeasuredSeeds: speedups.time.unmeasuredSeeds.length,
      unfinished,
      subjectDiverged: diverged,
    },
    singleSeedMargin,
    displayName(subjectRuns[0].name),
  );
  return {
    baseline: baseline.name,
    architecture: baseline.architecture,
    pairedSeeds: measured.map((pair) => pair.baseline.seed),
    target: figureOrNull(targets),
    speedups,
    claim,
    scale: describeScale(subjectRuns[0], baseline, measured.map((pair) => pair.baseline)),
  };
}

/**
 * Describes a failed run for the notes: the step it reached (its last recorded step), the error, and
 * that no speedup is measured with it.
 */
function failureNote(run: ModelRun): string {
  const label = `${displayName(run.name)} (seed ${run.seed})`;
  const reached = run.steps.length === 0 ? 'before its first recorded step' : `after step ${lastOf(run.steps).step}`;
  const reason = run.statusReason ? `: ${run.statusReason.replace(/\.+$/, '')}` : '';
  return `${label} failed ${reached}${reason}. It stopped before the end of its budget, so no speedup is measured with it.`;
}

function summariseModel(runs: ModelRun[], equalTimeSeconds: number | null): ModelSummary {
  const first = runs[0];
  const evaluated = runs.filter((run) => run.evaluations.length > 0);
  // The end of training is the last step, or the last evaluation for a run stored without steps.
  const ends = runs.flatMap((run): Array<{ tokens: number; trainingSeconds: number }> => {
    if (run.steps.length > 0) return [lastOf(run.steps)];
    if (run.evaluations.length > 0) return [lastOf(run.evaluations)];
    return [];
  });
  const bitsPerByte = evaluated.flatMap((run) => lastOf(run.evaluations).bitsPerByte ?? []);
  const atEqualTime =
    equalTimeSeconds === null ? [] : evaluated.flatMap((run) => perplexityAt(curveOf(run, 'time'), equalTimeSeconds) ?? []);

  return {
    name: first.name,
    architecture: first.architecture,
    seeds: runs.map((run) => run.seed),
    statuses: runs.map((run) => run.status),
    totalParameters: first.totalParameters,
    activeParametersPerToken: first.activeParametersPerToken,
    forwardFlopsPerToken: first.forwardFlopsPerToken,
    evaluatedSeeds: evaluated.length,
    finalPerplexity: figureOrNull(evaluated.map((run) => lastOf(run.evaluations).perplexity)),
    finalBitsPerByte: figureOrNull(bitsPerByte),
    trainingSeconds: figureOrNull(ends.map((end) => end.trainingSeconds)),
    trainingTokens: figureOrNull(ends.map((end) => end.tokens)),
    tokensPerSecond: figureOrNull(ends.filter((end) => end.trainingSeconds > 0).map((end) => end.tokens / end.trainingSeconds)),
    perplexityAtEqualTime: figureOrNull(atEqualTime),
  };
}

function describeScale(subject: ModelRun, baseline: ModelRun, baselineRuns: ModelRun[]): string {
  const tokens = baselineRuns.length === 0 ? null : Math.max(...baselineRuns.map((run) => lastOf(run.evaluations).tokens));
  const seconds = baselineRuns.length === 0 ? null : Math.max(...baselineRuns.map((run) => lastOf(run.evaluations).trainingSeconds));
  const parts = [
    `${displayName(subject.name)} ${formatCount(subject.totalParameters)} params, ${formatCount(subject.forwardFlopsPerToken)} FLOPs/token`,
    `${displayName(baseline.name)} ${formatCount(baseline.totalParameters)} params, ${formatCount(baseline.forwardFlopsPerToken)} FLOPs/token`,
  ];
  if (tokens !== null && seconds !== null) parts.push(`target at ${formatCount(tokens)} tokens, ${seconds.toFixed(seconds < 10 ? 1 : 0)} s`);
  return parts.join('; ');
}

/** Formats a count with a k/M/G/T suffix and three significant digits, for example 1.23M. */
export function formatCount(value: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1000 && unit < units.length - 1) {
    scaled /= 1000;
    unit++;
  }
  return `${Number(scaled.toPrecision(3))}${units[unit]}`;
}

function checkAnalysisOptions(singleSeedMargin: number, collapseThreshold: number): void {
  if (!(typeof singleSeedMargin === 'number' && Number.isFinite(singleSeedMargin) && singleSeedMargin >= 0)) {
    throw new Error(`analyse: singleSeedMargin is ${singleSeedMargin}; it must be a number >= 0.`);
  }
  if (!(typeof collapseThreshold === 'number' && collapseThreshold > 0 && collapseThreshold < 1)) {
    throw new Error(`analyse: collapseThreshold is ${collapseThreshold}; it must lie in (0, 1).`);
  }
}

function validateData(data: ReportData): void {
  data.models.forEach((run, index) => {
    const where = `models[${index}] (${run.name}, seed ${run.seed})`;
    if (!(Number.isFinite(run.forwardFlopsPerToken) && run.forwardFlopsPerToken >= 0)) {
      throw new Error(`analyse: ${where}.forwardFlopsPerToken is ${run.forwardFlopsPerToken}; it must be a finite number >= 0.`);
    }
    run.evaluations.forEach((evaluation, i) => {
      for (const field of ['tokens', 'trainingSeconds', 'perplexity'] as const) {
        const value = evaluation[field];
        if (!Number.isFinite(value) || value < 0) {
          throw new Error(`analyse: ${where}.evaluations[${i}].${field} is ${value}; it must be a finite number >= 0.`);
        }
      }
      const previous = run.evaluations[i - 1];
      if (previous && (evaluation.trainingSeconds < previous.trainingSeconds || evaluation.tokens < previous.tokens)) {
        throw new Error(`analyse: ${where}.evaluations[${i}] goes back in training seconds or tokens; evaluations must be in training order.`);
      }
    });
  });

  const seen = new Set<string>();
  for (const run of data.models) {
    const key = `${run.name}\u0000${run.seed}`;
    if (seen.has(key)) throw new Error(`analyse: model ${run.name} appears twice with seed ${run.seed}; each (name, seed) must be unique.`);
    seen.add(key);
  }
}

function figureOrNull(values: number[]): SeedFigure | null {
  return values.length === 0 ? null : seedFigure(values);
}

function lastOf<T>(items: readonly T[]): T {
  return items[items.length - 1];
}

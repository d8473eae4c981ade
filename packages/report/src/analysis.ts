/**
 * The comparison itself: time-to-target speedups of sMLP over each baseline on three x-axes,
 * perplexity at equal training time, throughput and routing health, each over the seeds.
 */
import { judgeClaim, PAPER_BASELINES, type ClaimVerdict } from './claim.js';
import { displayName } from './labels.js';
import { groupBy, routingHealth, type RoutingHealth } from './routing-health.js';
import { positiveSeedFigure, seedFigure, type SeedFigure } from './statistics.js';
import { findCrossing, perplexityAt, type CurvePoint } from './time-to-target.js';
import type { EvaluationPoint, ModelRun, PlannedRun, ReportData, RunContext, UnscoredPositions } from './types.js';

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
  /**
   * Last finite validation perplexity of each evaluated seed. For a seed that stopped early (listed
   * in `stoppedEarly`) that is its last value, not the end of a full budget.
   */
  finalPerplexity: SeedFigure | null;
  finalBitsPerByte: SeedFigure | null;
  /** Training seconds at the end of training (last step, or last evaluation without steps). */
  trainingSeconds: SeedFigure | null;
  trainingTokens: SeedFigure | null;
  /** Training tokens per training second over the whole run. */
  tokensPerSecond: SeedFigure | null;
  /** Perplexity at the common training time `Analysis.equalTimeSeconds`. */
  perplexityAtEqualTime: SeedFigure | null;
  /**
   * Seeds whose run did not finish its budget (`diverged`, `failed`, `interrupted` or `running`), with
   * the step of the last finite evaluation that `finalPerplexity` took (null: none).
   */
  stoppedEarly: Array<{ seed: number; status: string; lastFiniteStep: number | null }>;
  /** Leading validation positions the model is not scored on, when it skips some (see `ModelRun`). */
  unscoredPositions?: UnscoredPositions;
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
   * Whether the sMLP paper compared sMLP with this architecture (`PAPER_BASELINES`) and the subject
   * is an sMLP. Other comparisons report the measured speedup with the verdict `not judged`.
   */
  paperBaseline: boolean;
  /**
   * Seeds where both models have evaluations and neither run failed; speedups pair the runs of the
   * same seed. A failed run stopped early, so its last perplexity is no target and it reaches none.
   */
  pairedSeeds: number[];
  /**
   * The baseline's final perplexity (the target), over the paired seeds; on `Analysis.matchedPositions`
   * when they are set, as every baseline figure of the comparison is.
   */
  target: SeedFigure | null;
  speedups: Record<Axis, AxisSpeedup>;
  /** Verdict on the sMLP paper's claim (`PAPER_CLAIM`), judged on the time speedup; `not judged` outside the paper's baselines. */
  claim: ClaimVerdict;
  /**
   * Scale of the measurement, in words: parameters and FLOPs per token of both models, and the
   * tokens and training time of the baseline's whole run (not the moment it reached its target).
   */
  scale: string;
}

/**
 * The validation positions the comparisons score every model on: those the subject is scored on,
 * when that is fewer than all positions and every baseline has its validation losses by position.
 */
export interface MatchedPositions {
  /** Positions of each validation sequence the subject is scored on, counted from 1, in order. */
  positions: number[];
  /** Positions per validation sequence. */
  seqLen: number;
}

/** Result of `analyse`. */
export interface Analysis {
  /** The model measured against the others, or null when the run has none. */
  subject: string | null;
  /** Number of seeds of the run (the most of any model). */
  seedCount: number;
  /**
   * Training seconds of the last evaluation of the shortest finished (`done`) run. When no run
   * finished, that of the shortest run evaluated after 0 s; null when there is none. Perplexities
   * are compared there.
   */
  equalTimeSeconds: number | null;
  /** Kind of runs that set `equalTimeSeconds`: `finished` runs, `unfinished` ones (none finished), or null for none. */
  equalTimeBasis: 'finished' | 'unfinished' | null;
  models: ModelSummary[];
  comparisons: Comparison[];
  /**
   * Positions on which the comparisons (targets, times to target, speedups and verdicts) score every
   * baseline, when the subject is scored on fewer positions than the others: each baseline's
   * perplexity there comes from its loss sums by position. Null when the subject is scored on every
   * position, and when a baseline has no losses by position (a store older than schema version 3).
   * The baselines are then scored on all positions, and a note states that this favours the subject.
   */
  matchedPositions: MatchedPositions | null;
  routing: RoutingHealth[];
  /**
   * Things a reader must know: skipped, diverged, failed or unfinished runs, models not trained yet,
   * models scored on fewer positions, unpaired seeds, a single seed.
   */
  notes: string[];
  /** Planned runs (`ReportData.planned`) that have not started training. */
  untrained: PlannedRun[];
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
    } else if (run.status === 'running') {
      notes.push(runningNote(run, data.run));
    } else if (run.status !== 'done') {
      const reason = run.statusReason ? `: ${run.statusReason}` : '';
      const state = run.status === 'diverged' ? 'diverged' : `is ${run.status}`;
      notes.push(`${displayName(run.name)} (seed ${run.seed}) ${state}${reason}.`);
    }
    if (run.evaluations.length === 0) {
      notes.push(`${displayName(run.name)} (seed ${run.seed}) has no evaluation and is left out of the comparisons.`);
    }
  }
  const untrained = (data.planned ?? []).filter((plan) => !data.models.some((run) => run.name === plan.name && run.seed === plan.seed));
  notes.push(...untrainedNotes(untrained, data.run));
  const matchedPositions = subject === null ? null : matchPositions(subject, groups);
  notes.push(...scoringNotes(groups, subject, matchedPositions));

  // A run that diverged or was interrupted early would pull the common time down to where it stopped,
  // and a run evaluated only at 0 s would put it where no model has trained.
  const evaluatedRuns = data.models.filter((run) => run.evaluations.length > 0);
  const finishedRuns = evaluatedRuns.filter((run) => run.status === 'done');
  const trainedRuns = evaluatedRuns.filter((run) => lastOf(run.evaluations).trainingSeconds > 0);
  let equalTimeBasis: Analysis['equalTimeBasis'] = null;
  if (finishedRuns.length > 0) equalTimeBasis = 'finished';
  else if (trainedRuns.length > 0) equalTimeBasis = 'unfinished';
  const equalTimeRuns = equalTimeBasis === 'finished' ? finishedRuns : trainedRuns;
  const equalTimeSeconds =
    equalTimeRuns.length === 0 ? null : Math.min(...equalTimeRuns.map((run) => lastOf(run.evaluations).trainingSeconds));

  const models = [...groups.values()].map((runs) => summariseModel(runs, equalTimeSeconds));
  const comparisons: Comparison[] = [];
  if (subject === null) {
    const pending = untrained.find((plan) => plan.architecture === 'smlp');
    notes.push(
      pending === undefined
        ? 'The run has no sMLP model, so there are no speedups to report.'
        : `${displayName(pending.name)} has not trained yet, so there are no speedups to report.`,
    );
  } else {
    const subjectArchitecture = groups.get(subject)![0].architecture;
    for (const [name, runs] of groups) {
      if (name === subject) continue;
      const paperBaseline = subjectArchitecture === 'smlp' && PAPER_BASELINES.includes(runs[0].architecture);
      const baselineRuns = matchedPositions === null ? runs : runs.map((run) => onPositions(run, matchedPositions));
      comparisons.push(compare(groups.get(subject)!, baselineRuns, { singleSeedMargin, paperBaseline, untrained, context: data.run }, notes));
    }
  }

  const routing = data.models.flatMap((run) => routingHealth(run, collapseThreshold) ?? []);
  return {
    subject,
    seedCount,
    equalTimeSeconds,
    equalTimeBasis,
    models,
    comparisons,
    matchedPositions,
    routing,
    notes,
    untrained,
    singleSeedMargin,
    collapseThreshold,
  };
}

/** Settings of `compare` for one baseline. */
interface CompareSettings {
  singleSeedMargin: number;
  /** Whether the paper compared sMLP with this baseline; otherwise the claim is `not judged`. */
  paperBaseline: boolean;
  untrained: PlannedRun[];
  context: RunContext;
}

function compare(subjectRuns: ModelRun[], baselineRuns: ModelRun[], settings: CompareSettings, notes: string[]): Comparison {
  const { singleSeedMargin, paperBaseline, untrained, context } = settings;
  const baseline = baselineRuns[0];
  const subjectBySeed = new Map(subjectRuns.filter((run) => run.evaluations.length > 0).map((run) => [run.seed, run]));
  const pairs = baselineRuns
    .filter((run) => run.evaluations.length > 0 && subjectBySeed.has(run.seed))
    .map((run) => ({ baseline: run, subject: subjectBySeed.get(run.seed)! }));
  const unpaired = baselineRuns.filter((run) => run.evaluations.length > 0 && !subjectBySeed.has(run.seed));
  if (unpaired.length > 0) {
    const subjectName = subjectRuns[0].name;
    const pending = unpaired.every((run) => untrained.some((plan) => plan.name === subjectName && plan.seed === run.seed));
    const seeds = unpaired.map((run) => run.seed).join(', ');
    const single = unpaired.length === 1;
    notes.push(
      pending
        ? `${displayName(baseline.name)} seed${single ? '' : 's'} ${seeds} ${single ? 'is' : 'are'} not compared: ` +
            `${displayName(subjectName)} has not trained at ${single ? 'that seed' : 'those seeds'} yet.`
        : `${displayName(baseline.name)} seeds ${seeds} have no sMLP run of the same seed and are not compared.`,
    );
  }

  // A failed run stopped early, so it sets no target and reaches none. Its seed is left out of the
  // speedups, and it makes the verdict inconclusive as an interrupted run does.
  // A baseline whose last finite evaluation is at the start (it diverged before the next one) never
  // trained, so its perplexity there is no target either.
  const measured = pairs.filter(
    (pair) => pair.subject.status !== 'failed' && pair.baseline.status !== 'failed' && !untrainedAtEnd(pair.baseline),
  );
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
      if (baselineCrossing.beforeFirstPoint || subjectCrossing.beforeFirstPoint || subjectCrossing.x === 0 || baselineCrossing.x === 0) {
        unmeasuredSeeds.push(pair.subject.seed);
        return;
      }
      ratios.push(baselineCrossing.x / subjectCrossing.x);
    });
    speedups[axis] = {
      axis,
      baseline: positiveFigureOrNull(baselineX),
      subject: positiveFigureOrNull(subjectX),
      speedup: positiveFigureOrNull(ratios),
      reachedSeeds: subjectX.length,
      unmeasuredSeeds,
    };
  }

  const stopped = (run: ModelRun): boolean => run.status === 'interrupted' || run.status === 'running' || run.status === 'failed';
  const unfinished = pairs
    .flatMap((pair) => [pair.subject, pair.baseline])
    .filter(stopped)
    .map((run) => `${displayName(run.name)} (seed ${run.seed}) ${stoppedState(run, context)}`);
  for (const { baseline: run } of pairs) {
    if (stopped(run) || !untrainedAtEnd(run)) continue;
    const label = `${displayName(run.name)} (seed ${run.seed})`;
    unfinished.push(run.status === 'diverged' ? `${label} diverged before its first evaluation after the start` : `${label} has no evaluation after the start`);
  }
  const diverged = pairs
    .filter((pair) => pair.subject.status === 'diverged')
    .map((pair) => `seed ${pair.subject.seed}${pair.subject.statusReason ? `: ${pair.subject.statusReason}` : ''}`);
  const subjectLabel = displayName(subjectRuns[0].name);
  const verdictInput = {
    speedup: speedups.time.speedup,
    pairedSeeds: pairs.length,
    reachedSeeds: speedups.time.reachedSeeds,
    unmeasuredSeeds: speedups.time.unmeasuredSeeds.length,
    unfinished,
    subjectDiverged: diverged,
  };
  // The paper's claim states nothing about a model it did not compare with, so such a speedup gets no verdict.
  const claim: ClaimVerdict = paperBaseline
    ? judgeClaim(verdictInput, singleSeedMargin, subjectLabel)
    : {
        verdict: 'not judged',
        reason: `The sMLP paper did not compare ${subjectLabel} with ${baseline.architecture}: the speedup is measured, not judged against its claim.`,
        reachesPaperSpeedup: 'n/a',
      };
  return {
    baseline: baseline.name,
    architecture: baseline.architecture,
    paperBaseline,
    pairedSeeds: measured.map((pair) => pair.baseline.seed),
    target: positiveFigureOrNull(targets),
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

/** Describes, for the claim's reason, a run that stopped before the end of its budget or may still be training. */
function stoppedState(run: ModelRun, context: RunContext): string {
  if (run.status === 'failed') return 'failed';
  if (run.status !== 'running') return `is ${run.status}`;
  const state = runningState(context);
  if (state === 'training') return 'is still training';
  if (state === 'stopped') return 'stopped without finishing';
  return 'is marked running (still training, or stopped without finishing)';
}

/**
 * Tells what a model marked `running` in the store is doing: `training` when the caller checked that
 * a process is training the run, `stopped` when the run has ended or no process is training it, and
 * `unknown` otherwise. A killed process leaves its run and model marked `running`.
 */
function runningState(context: RunContext): 'training' | 'stopped' | 'unknown' {
  if (context.status !== undefined && context.status !== 'running') return 'stopped';
  if (context.processAlive === true) return 'training';
  if (context.processAlive === false) return 'stopped';
  return 'unknown';
}

/** Describes a run whose status is still `running`, for the notes. */
function runningNote(run: ModelRun, context: RunContext): string {
  const label = `${displayName(run.name)} (seed ${run.seed})`;
  const state = runningState(context);
  if (state === 'training') return `${label} is still training: its figures are those recorded so far.`;
  if (state === 'stopped') {
    const cause =
      context.status !== undefined && context.status !== 'running'
        ? `the run is ${context.status}, but this model was never marked finished`
        : 'the store still marks it running, but no process is training the run (it was killed, or its machine stopped)';
    return `${label} stopped without finishing: ${cause}. Its figures end at its last evaluation; resume the run to finish it.`;
  }
  return (
    `${label} is marked running in the store: either a process is still training it, or the process stopped ` +
    'without finishing (for example, it was killed). The store cannot tell which; its figures end at its last evaluation.'
  );
}

/** Names the planned models that have not started training, in one note. */
function untrainedNotes(untrained: PlannedRun[], context: RunContext): string[] {
  if (untrained.length === 0) return [];
  const labels = [...groupBy(untrained, (plan) => plan.name).values()].map((plans) => {
    const seeds = plans.map((plan) => plan.seed);
    return `${displayName(plans[0].name)} (seed${seeds.length === 1 ? '' : 's'} ${seeds.join(', ')})`;
  });
  const single = labels.length === 1;
  const list = single ? labels[0] : `${labels.slice(0, -1).join(', ')} and ${labels[labels.length - 1]}`;
  const state = runningState(context);
  const verb = single ? 'has' : 'have';
  if (state === 'training') return [`${list} ${verb} not trained yet: the run has not reached ${single ? 'it' : 'them'}.`];
  if (state === 'unknown') {
    return [`${list} ${verb} not trained yet: the run has not reached ${single ? 'it' : 'them'}, or it stopped before ${single ? 'it' : 'they'} started.`];
  }
  return [
    `${list} ${single ? 'has' : 'have'} not trained yet: the run stopped before ${single ? 'it' : 'they'} started. ` +
      `Resume the run to train ${single ? 'it' : 'them'}.`,
  ];
}

/**
 * Writes the notes on models scored on fewer validation positions than the others. With `matched`,
 * they say that every baseline is scored on the subject's positions. Without it, they give the
 * direction of the bias, because the store has no perplexity of the other models on those positions.
 */
function scoringNotes(groups: Map<string, ModelRun[]>, subject: string | null, matched: MatchedPositions | null): string[] {
  const notes: string[] = [];
  for (const [name, runs] of groups) {
    const unscored = runs.find((run) => run.unscoredPositions !== undefined)?.unscoredPositions;
    // The subject's full statement is next to its speedups, under the claim table.
    if (name === subject && matched !== null) {
      notes.push(
        `${displayName(name)} is scored on positions ${formatPositions(matched.positions)} only; the targets, times to target and verdicts ` +
          'score every other model on the same positions (see Scoring under the claim table).',
      );
    } else if (unscored === undefined) {
      continue;
    } else if (name === subject) {
      notes.push(
        `${displayName(name)} is scored on positions ${unscored.skipped + 1} to ${unscored.seqLen} only, the other models on all ${unscored.seqLen}: ` +
          'this favours it (see Scoring under the claim table).',
      );
    } else if (matched !== null && subject !== null) {
      notes.push(
        `${displayName(name)} is scored on positions ${unscored.skipped + 1} to ${unscored.seqLen} only in the model table: its ${unscored.cause} ` +
          `leaves the first ${unscored.skipped} out of the loss. The comparisons score it on the positions ${displayName(subject)} is scored on.`,
      );
    } else {
      notes.push(describeUnscoredPositions(name, unscored));
    }
  }
  return notes;
}

/**
 * Describes, for the report, how the comparisons match the positions of a subject scored on fewer
 * validation positions than the others: which positions, why (from `unscored`, when known), and
 * which figures are computed on them.
 */
export function describeMatchedPositions(model: string, matched: MatchedPositions, unscored?: UnscoredPositions): string {
  const name = displayName(model);
  const positions = formatPositions(matched.positions);
  const cause = unscored === undefined ? '' : ` (its ${unscored.cause} leaves the first ${unscored.skipped} out of the loss)`;
  return (
    `${name} is scored on positions ${positions} of each ${matched.seqLen}-position validation sequence${cause}. ` +
    `Later positions have more context and are easier to predict, so the comparison is made on matched positions: ` +
    `in the claim table, the time-to-target table and the verdicts, every baseline's perplexity is computed on the same positions ${positions}, ` +
    'from its validation losses stored by position, and each target is a baseline\'s final perplexity on those positions. ' +
    `The model table and the charts show each model on its own positions (${name} on ${positions}, the others on all ${matched.seqLen}).`
  );
}

/** Writes positions counted from 1 as runs, for example `13 to 64` or `2, 5 to 7`. */
export function formatPositions(positions: readonly number[]): string {
  const runs: string[] = [];
  for (let start = 0; start < positions.length; ) {
    let end = start;
    while (end + 1 < positions.length && positions[end + 1] === positions[end] + 1) end++;
    runs.push(end === start ? String(positions[start]) : `${positions[start]} to ${positions[end]}`);
    start = end + 1;
  }
  return runs.join(', ');
}

/**
 * Returns the positions the comparisons score every model on (see `Analysis.matchedPositions`): the
 * subject's scored positions, when it skips some and every evaluation of every other model has a
 * loss sum and a nonzero count at each of them. Null otherwise.
 */
function matchPositions(subject: string, groups: Map<string, ModelRun[]>): MatchedPositions | null {
  const matched = subjectPositions(groups.get(subject)!);
  if (matched === null) return null;
  const baselineEvaluations = [...groups].flatMap(([name, runs]) => (name === subject ? [] : runs.flatMap((run) => run.evaluations)));
  if (baselineEvaluations.length === 0) return null;
  const covers = (evaluation: EvaluationPoint): boolean =>
    evaluation.positionLossSums?.length === matched.seqLen &&
    evaluation.positionCounts?.length === matched.seqLen &&
    matched.positions.every((position) => evaluation.positionCounts![position - 1] > 0);
  return baselineEvaluations.every(covers) ? matched : null;
}

/**
 * Returns the positions the subject is scored on, when that is fewer than all: those with a scored
 * target in its first evaluation with counts by position, else those after the leading positions
 * its config leaves out (`unscoredPositions`). Null when it is scored on every position.
 */
function subjectPositions(runs: ModelRun[]): MatchedPositions | null {
  for (const run of runs) {
    for (const evaluation of run.evaluations) {
      const counts = evaluation.positionCounts;
      if (counts === undefined) continue;
      const positions = counts.flatMap((count, index) => (count > 0 ? [index + 1] : []));
      return positions.length === 0 || positions.length === counts.length ? null : { positions, seqLen: counts.length };
    }
  }
  const unscored = runs.find((run) => run.unscoredPositions !== undefined)?.unscoredPositions;
  if (unscored === undefined) return null;
  return { positions: Array.from({ length: unscored.seqLen - unscored.skipped }, (_, index) => unscored.skipped + index + 1), seqLen: unscored.seqLen };
}

/**
 * Returns `run` with each evaluation's loss and perplexity computed on `matched.positions` alone,
 * from its loss sums and counts by position (which `matchPositions` checked). Bits per byte become
 * null, since the bytes of each position are not stored. An evaluation whose loss there is not
 * finite is left out, as the store reader leaves out one without a finite perplexity.
 */
function onPositions(run: ModelRun, matched: MatchedPositions): ModelRun {
  const evaluations = run.evaluations.flatMap((evaluation): EvaluationPoint[] => {
    let sum = 0;
    let count = 0;
    for (const position of matched.positions) {
      sum += evaluation.positionLossSums![position - 1];
      count += evaluation.positionCounts![position - 1];
    }
    const loss = sum / count;
    if (!Number.isFinite(loss)) return [];
    return [{ ...evaluation, validationLoss: loss, perplexity: Math.exp(loss), bitsPerByte: null }];
  });
  return { ...run, evaluations };
}

/**
 * Describes a model scored on fewer validation positions than the others: which positions, why, and
 * the direction of the bias.
 */
export function describeUnscoredPositions(model: string, unscored: UnscoredPositions): string {
  const { skipped, seqLen, cause } = unscored;
  const name = displayName(model);
  return (
    `${name} is scored on positions ${skipped + 1} to ${seqLen} of each ${seqLen}-position validation sequence: its ${cause} ` +
    `leaves the first ${skipped} out of the loss, while the other models are scored on all ${seqLen}. ` +
    `Later positions have more context and are easier to predict, so ${name}'s perplexities read lower than on all positions, ` +
    `and its speedups at the other models' perplexities are biased in its favour. ` +
    'The run store has no perplexity of the other models on the same positions.'
  );
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
  const unscoredPositions = runs.find((run) => run.unscoredPositions !== undefined)?.unscoredPositions;
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
    finalPerplexity: positiveFigureOrNull(evaluated.map((run) => lastOf(run.evaluations).perplexity)),
    finalBitsPerByte: lossFigureOrNull(bitsPerByte),
    trainingSeconds: positiveFigureOrNull(ends.map((end) => end.trainingSeconds)),
    trainingTokens: positiveFigureOrNull(ends.map((end) => end.tokens)),
    tokensPerSecond: positiveFigureOrNull(ends.filter((end) => end.trainingSeconds > 0).map((end) => end.tokens / end.trainingSeconds)),
    perplexityAtEqualTime: positiveFigureOrNull(atEqualTime),
    stoppedEarly: runs
      .filter((run) => ['diverged', 'failed', 'interrupted', 'running'].includes(run.status))
      .map((run) => ({ seed: run.seed, status: run.status, lastFiniteStep: run.evaluations.length === 0 ? null : lastOf(run.evaluations).step })),
    ...(unscoredPositions === undefined ? {} : { unscoredPositions }),
  };
}

function describeScale(subject: ModelRun, baseline: ModelRun, baselineRuns: ModelRun[]): string {
  const tokens = baselineRuns.length === 0 ? null : Math.max(...baselineRuns.map((run) => lastOf(run.evaluations).tokens));
  const seconds = baselineRuns.length === 0 ? null : Math.max(...baselineRuns.map((run) => lastOf(run.evaluations).trainingSeconds));
  const parts = [
    `${displayName(subject.name)} ${formatCount(subject.totalParameters)} params, ${formatCount(subject.forwardFlopsPerToken)} FLOPs/token`,
    `${displayName(baseline.name)} ${formatCount(baseline.totalParameters)} params, ${formatCount(baseline.forwardFlopsPerToken)} FLOPs/token`,
  ];
  if (tokens !== null && seconds !== null) {
    parts.push(`${displayName(baseline.name)} run: ${formatCount(tokens)} tokens in ${formatSeconds(seconds)} s of training`);
  }
  return parts.join('; ');
}

/** Formats a count with a k/M/G/T suffix and three significant digits, for example 1.23M. */
export function formatCount(value: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let scaled = value;
  let unit = 0;
  // Compare the rounded value, so that 999,600 gives 1M and not 1000k.
  while (Math.abs(Number(scaled.toPrecision(3))) >= 1000 && unit < units.length - 1) {
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
      const { positionLossSums: sums, positionCounts: counts } = evaluation;
      if ((sums === undefined) !== (counts === undefined) || (sums !== undefined && counts !== undefined && sums.length !== counts.length)) {
        throw new Error(
          `analyse: ${where}.evaluations[${i}] has ${sums?.length ?? 'no'} positionLossSums and ${counts?.length ?? 'no'} positionCounts; ` +
            'give both, one entry per position, or neither.',
        );
      }
      counts?.forEach((count, position) => {
        if (!(Number.isInteger(count) && count >= 0)) {
          throw new Error(`analyse: ${where}.evaluations[${i}].positionCounts[${position}] is ${count}; it must be an integer >= 0.`);
        }
      });
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

/** Tells whether a run's last finite evaluation is at the start, before any training time or token. */
function untrainedAtEnd(run: ModelRun): boolean {
  const last = lastOf(run.evaluations);
  return last.trainingSeconds === 0 && last.tokens === 0;
}

/** Summarises a positive quantity on the log scale (`positiveSeedFigure`), or null without values. */
function positiveFigureOrNull(values: number[]): SeedFigure | null {
  return values.length === 0 ? null : positiveSeedFigure(values);
}

/**
 * Summarises bits per byte, a log-loss, on its own linear scale, as the loss behind a perplexity is
 * summarised: the interval's lower end is raised to 0, since bits per byte cannot be negative.
 */
function lossFigureOrNull(values: number[]): SeedFigure | null {
  if (values.length === 0) return null;
  const figure = seedFigure(values);
  return { ...figure, low: figure.low === null ? null : Math.max(0, figure.low), scale: 'linear' };
}

function lastOf<T>(items: readonly T[]): T {
  return items[items.length - 1];
}

/** Formats a training time: whole seconds from 10 s, one decimal from 1 s (and for 0), two significant digits below. */
function formatSeconds(seconds: number): string {
  if (seconds >= 10) return seconds.toFixed(0);
  if (seconds >= 1 || seconds === 0) return seconds.toFixed(1);
  return String(Number(seconds.toPrecision(2)));
}

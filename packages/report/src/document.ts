/**
 * The report's content as a list of blocks, written once and rendered to Markdown and to HTML.
 */
import { AXES, describeMatchedPositions, describeUnscoredPositions, formatCount, formatPositions, type Analysis, type Axis, type Comparison, type ModelSummary } from './analysis.js';
import { describeVerdictRule, PAPER_CLAIM, type PaperSpeedupCheck } from './claim.js';
import { displayName, provenanceLine } from './labels.js';
import type { SeedFigure } from './statistics.js';
import type { RunContext } from './types.js';

/** One block of the report. */
export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'quote'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; headers: string[]; rows: string[][] }
  | { kind: 'chart'; name: string; title: string };

/** A chart the document refers to by file stem. */
export interface ChartReference {
  name: string;
  title: string;
  /** Section that shows the chart. */
  section: 'curves' | 'throughput' | 'routing';
}

const AXIS_UNITS: Record<Axis, string> = { time: 'time (s)', tokens: 'tokens', flops: 'training FLOPs' };

/** Builds the report's blocks from the analysis and the charts that were rendered. */
export function buildDocument(analysis: Analysis, run: RunContext, charts: readonly ChartReference[]): Block[] {
  const subject = analysis.subject === null ? 'sMLP' : displayName(analysis.subject);
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: `moebench report: run ${run.runId}` },
    { kind: 'paragraph', text: provenanceLine(run) },
  ];
  if (analysis.notes.length > 0) blocks.push({ kind: 'list', items: analysis.notes });

  blocks.push(
    { kind: 'heading', level: 2, text: "The paper's claim" },
    { kind: 'quote', text: `sMLP achieves ${PAPER_CLAIM.text}.` },
    { kind: 'paragraph', text: `Source: ${PAPER_CLAIM.source}. The paper's scale: ${PAPER_CLAIM.scale}.` },
  );
  if (analysis.comparisons.length === 0) {
    blocks.push({ kind: 'paragraph', text: noComparisonReason(analysis) });
  } else {
    blocks.push(...comparisonBlocks(analysis, subject));
  }

  const equalTime = analysis.equalTimeSeconds === null ? 'n/a' : `${formatSeconds(analysis.equalTimeSeconds)} s`;
  blocks.push(
    { kind: 'heading', level: 2, text: 'Models' },
    { kind: 'paragraph', text: `${equalTimeSentence(analysis, equalTime)} ${seedsSentence(analysis)}` },
    {
      kind: 'table',
      headers: [
        'Model',
        'Parameters',
        'Active / token',
        'Forward FLOPs / token',
        'Seeds',
        'Status',
        'Final perplexity',
        'Bits per byte',
        analysis.equalTimeSeconds === null ? 'Perplexity at equal time' : `Perplexity at ${equalTime}`,
        'Training time (s)',
        'Tokens',
        'Tokens / s',
      ],
      rows: analysis.models.map((model) => [
        displayName(model.name),
        formatCount(model.totalParameters),
        formatCount(model.activeParametersPerToken),
        formatCount(model.forwardFlopsPerToken),
        model.seeds.join(', '),
        [...new Set(model.statuses)].join(', '),
        formatFigure(model.finalPerplexity, formatPerplexity) + finalPerplexityNote(model),
        formatFigure(model.finalBitsPerByte, (value) => value.toFixed(3)),
        formatFigure(model.perplexityAtEqualTime, formatPerplexity),
        formatFigure(model.trainingSeconds, formatSeconds),
        formatFigure(model.trainingTokens, formatCount),
        formatFigure(model.tokensPerSecond, (value) => value.toFixed(0)),
      ]),
    },
  );
  for (const chart of charts.filter((chart) => chart.section === 'curves' || chart.section === 'throughput')) {
    blocks.push({ kind: 'chart', name: chart.name, title: chart.title });
  }

  blocks.push({ kind: 'heading', level: 2, text: 'Routing health' });
  if (analysis.routing.length === 0) {
    blocks.push({ kind: 'paragraph', text: 'No model of this run recorded routing statistics.' });
  } else {
    const warnings = analysis.routing.flatMap((health) => health.collapseWarnings);
    blocks.push({
      kind: 'paragraph',
      text:
        `Load figures cover the last quarter of each run's routed steps. A router-collapse warning is raised when one expert ` +
        `takes more than ${(analysis.collapseThreshold * 100).toFixed(0)}% of a layer's tokens there (choice share x k for top-k routers). ` +
        (warnings.length === 0 ? 'No layer collapsed.' : `${warnings.length} layer(s) collapsed:`),
    });
    if (warnings.length > 0) blocks.push({ kind: 'list', items: warnings.map((warning) => `Warning: ${warning}`) });
    blocks.push({
      kind: 'table',
      headers: ['Model', 'Seed', 'Layer', 'Experts', 'Max token share', 'Busiest expert', 'Idle experts (mean)', 'Idle throughout', 'Dropped (mean)', 'Dropped (last step)'],
      rows: analysis.routing.flatMap((health) =>
        health.layers.map((layer) => [
          displayName(health.name),
          String(health.seed),
          layer.layer,
          String(health.numExperts),
          formatPercent(layer.maxTokenShare),
          String(layer.busiestExpert),
          layer.meanIdleExperts.toFixed(2),
          layer.idleThroughout.length === 0 ? 'none' : layer.idleThroughout.join(', '),
          formatPercent(layer.meanDroppedFraction),
          formatPercent(layer.finalDroppedFraction),
        ]),
      ),
    });
    for (const chart of charts.filter((chart) => chart.section === 'routing')) {
      blocks.push({ kind: 'chart', name: chart.name, title: chart.title });
    }
  }
  return blocks;
}

/** Builds the claim table, the verdict rule, the table of other models and the time-to-target table. */
function comparisonBlocks(analysis: Analysis, subject: string): Block[] {
  const paper = analysis.comparisons.filter((comparison) => comparison.paperBaseline);
  const others = analysis.comparisons.filter((comparison) => !comparison.paperBaseline);
  const subjectSummary = analysis.models.find((model) => model.name === analysis.subject);
  const blocks: Block[] = [];

  if (paper.length > 0) {
    blocks.push(
      {
        kind: 'table',
        headers: ['Baseline', 'Paper', 'Measured speedup, time', 'Tokens', 'FLOPs', `Reaches ${PAPER_CLAIM.speedup}x`, 'Verdict', 'Reason', 'Scale'],
        rows: paper.map((comparison) => [
          displayName(comparison.baseline),
          `up to ${PAPER_CLAIM.speedup}x`,
          formatSpeedup(comparison, 'time'),
          formatSpeedup(comparison, 'tokens'),
          formatSpeedup(comparison, 'flops'),
          formatPaperSpeedup(comparison.claim.reachesPaperSpeedup, comparison),
          `**${comparison.claim.verdict}**`,
          comparison.claim.reason,
          comparison.scale,
        ]),
      },
      { kind: 'paragraph', text: `Verdict rule. ${describeVerdictRule(analysis.singleSeedMargin)}` },
      {
        kind: 'paragraph',
        text:
          "Scale gives both models' sizes and the baseline's whole run: the tokens and training time it was trained for, " +
          'not the moment it reached its target (that is in the time-to-target table).',
      },
    );
  } else {
    blocks.push({ kind: 'paragraph', text: `None of the comparisons below is one the paper made, so no verdict on its claim is given.` });
  }
  if (subjectSummary !== undefined && analysis.matchedPositions !== null) {
    blocks.push({
      kind: 'paragraph',
      text: `Scoring. ${describeMatchedPositions(subjectSummary.name, analysis.matchedPositions, subjectSummary.unscoredPositions)}`,
    });
  } else if (subjectSummary?.unscoredPositions !== undefined) {
    blocks.push({ kind: 'paragraph', text: `Scoring. ${describeUnscoredPositions(subjectSummary.name, subjectSummary.unscoredPositions)}` });
  }

  if (others.length > 0) {
    blocks.push(
      { kind: 'heading', level: 2, text: 'Models the paper did not compare' },
      {
        kind: 'paragraph',
        text:
          `The sMLP paper compared sMLP only with GShard, Switch, BASE Layers, HASH Layers, a dense Transformer and gMLP. ` +
          `The speedups of ${subject} over the models below are measured the same way, but the paper's claim says nothing about them, ` +
          'so they get no verdict.',
      },
      {
        kind: 'table',
        headers: ['Model', 'Architecture', 'Measured speedup, time', 'Tokens', 'FLOPs', 'Scale'],
        rows: others.map((comparison) => [
          displayName(comparison.baseline),
          comparison.architecture,
          formatSpeedup(comparison, 'time'),
          formatSpeedup(comparison, 'tokens'),
          formatSpeedup(comparison, 'flops'),
          comparison.scale,
        ]),
      },
    );
  }

  blocks.push(
    { kind: 'heading', level: 2, text: 'Time to target' },
    {
      kind: 'paragraph',
      text:
        `Each target is a baseline's final validation perplexity${matchedTargetClause(analysis, subject)}. The time is the training time (evaluation excluded) at which ` +
        `the perplexity first reaches the target, linearly interpolated between evaluations; tokens and training FLOPs ` +
        `(3 x forward FLOPs per token x tokens) are measured the same way. Speedup = baseline / ${subject}. ${seedsSentence(analysis)}`,
    },
    {
      kind: 'table',
      headers: ['Baseline', 'Target perplexity', ...AXES.flatMap((axis) => [`Baseline ${AXIS_UNITS[axis]}`, `${subject} ${AXIS_UNITS[axis]}`, 'Speedup'])],
      rows: analysis.comparisons.map((comparison) => [
        displayName(comparison.baseline),
        formatFigure(comparison.target, formatPerplexity),
        ...AXES.flatMap((axis) => {
          const speedup = comparison.speedups[axis];
          const formatter = axis === 'time' ? formatSeconds : formatCount;
          return [
            formatFigure(speedup.baseline, formatter),
            formatSubjectCrossing(comparison, axis, formatter),
            formatSpeedup(comparison, axis),
          ];
        }),
      ]),
    },
  );
  return blocks;
}

/** Names, after "final validation perplexity", the positions the targets are computed on when they are matched. */
function matchedTargetClause(analysis: Analysis, subject: string): string {
  if (analysis.matchedPositions === null) return '';
  return ` on positions ${formatPositions(analysis.matchedPositions.positions)}, those ${subject} is scored on`;
}

function noComparisonReason(analysis: Analysis): string {
  if (analysis.subject === null) {
    const pending = analysis.untrained.find((plan) => plan.architecture === 'smlp');
    if (pending !== undefined) return `No speedup can be measured yet: ${displayName(pending.name)} has not trained in this run.`;
    return 'No speedup can be measured: the run has no sMLP model.';
  }
  return `No speedup can be measured: the run has no model besides ${displayName(analysis.subject)}.`;
}

/** Formats a seed figure as `mean` with one seed and `mean [low, high]` with several. */
export function formatFigure(figure: SeedFigure | null, format: (value: number) => string): string {
  if (figure === null) return 'n/a';
  if (figure.low === null || figure.high === null) return format(figure.mean);
  return `${format(figure.mean)} [${format(figure.low)}, ${format(figure.high)}]`;
}

function formatSpeedup(comparison: Comparison, axis: Axis): string {
  const { speedup, reachedSeeds } = comparison.speedups[axis];
  if (comparison.pairedSeeds.length === 0) return 'n/a';
  if (reachedSeeds === 0) return 'not reached';
  if (speedup === null) return 'unknown' + reachedSuffix(comparison, axis);
  return formatFigure(speedup, (value) => `${value.toFixed(2)}x`) + reachedSuffix(comparison, axis);
}

/** The seeds a figure leaves out, in brackets; `withUnmeasured` adds those whose time is only bounded. */
function reachedSuffix(comparison: Comparison, axis: Axis, withUnmeasured = true): string {
  const { reachedSeeds, unmeasuredSeeds } = comparison.speedups[axis];
  const paired = comparison.pairedSeeds.length;
  const parts: string[] = [];
  if (reachedSeeds < paired) parts.push(`reached in ${reachedSeeds} of ${paired} seeds`);
  if (withUnmeasured && unmeasuredSeeds.length > 0) {
    parts.push(`time only bounded in ${unmeasuredSeeds.length} of ${paired} seeds`);
  }
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

function seedsSentence(analysis: Analysis): string {
  return analysis.seedCount > 1
    ? 'Figures are geometric means over seeds with the 95% t interval of their logarithms in brackets (bits per byte: arithmetic mean and t interval).'
    : 'One seed: figures have no interval.';
}

/** Formats sMLP's time, tokens or FLOPs to the target: n/a without a measured pair, `not reached`, or the figure. */
function formatSubjectCrossing(comparison: Comparison, axis: Axis, format: (value: number) => string): string {
  const { subject } = comparison.speedups[axis];
  if (comparison.pairedSeeds.length === 0) return 'n/a';
  if (subject === null) return 'not reached';
  return formatFigure(subject, format) + reachedSuffix(comparison, axis, false);
}

/** Formats the 2x check, naming for `undecided` the margin it fell within. */
function formatPaperSpeedup(check: PaperSpeedupCheck, comparison: Comparison): string {
  if (check !== 'undecided') return check;
  const speedup = comparison.speedups.time.speedup;
  return speedup !== null && speedup.n > 1 ? `undecided (interval contains ${PAPER_CLAIM.speedup}x)` : 'undecided (within the one-seed margin)';
}

/** Explains the sentence on equal training time from the runs that set it. */
function equalTimeSentence(analysis: Analysis, equalTime: string): string {
  if (analysis.equalTimeBasis === 'finished') {
    return `Perplexity at equal training time is read at ${equalTime}, the end of the shortest finished run (runs that stopped earlier show n/a there).`;
  }
  if (analysis.equalTimeBasis === 'unfinished') {
    return (
      `No run finished, so perplexity at equal training time is read at ${equalTime}, where the shortest run that ` +
      'trained past 0 s was last evaluated (runs that stopped earlier show n/a there).'
    );
  }
  return 'Perplexity at equal training time is n/a: no run was evaluated after training started.';
}

/** Says, after a final perplexity, that it comes from a diverged seed or from fewer positions. */
function finalPerplexityNote(model: ModelSummary): string {
  const parts: string[] = [];
  for (const { seed, status, lastFiniteStep } of model.stoppedEarly) {
    if (lastFiniteStep === null) continue;
    const where = `${status === 'running' ? 'value so far' : 'last finite value'}, at step ${lastFiniteStep}`;
    parts.push(model.seeds.length === 1 ? `${status}: ${where}` : `seed ${seed} ${status}: ${where}`);
  }
  if (model.unscoredPositions !== undefined) {
    const { skipped, seqLen } = model.unscoredPositions;
    parts.push(`positions ${skipped + 1} to ${seqLen} only`);
  }
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

function formatPerplexity(value: number): string {
  return value.toFixed(2);
}

/** Seconds with one decimal, or two significant digits below 1 s so short runs do not read as 0.0. */
function formatSeconds(value: number): string {
  if (value !== 0 && Math.abs(value) < 1) return String(Number(value.toPrecision(2)));
  return value.toFixed(1);
}

function formatPercent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

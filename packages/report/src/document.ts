/**
 * The report's content as a list of blocks, written once and rendered to Markdown and to HTML.
 */
import { AXES, formatCount, type Analysis, type Axis, type Comparison } from './analysis.js';
import { describeVerdictRule, PAPER_CLAIM } from './claim.js';
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
    {
      kind: 'paragraph',
      text:
        `Perplexity at equal training time is read at ${equalTime}, the end of the shortest finished run ` +
        `(runs that stopped earlier show n/a there). ${seedsSentence(analysis)}`,
    },
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
        `Perplexity at ${equalTime}`,
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
        formatFigure(model.finalPerplexity, formatPerplexity),
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

/** Builds the claim table, the verdict rule and the time-to-target table. */
function comparisonBlocks(analysis: Analysis, subject: string): Block[] {
  return [
    {
      kind: 'table',
      headers: ['Baseline', 'Paper', `Measured speedup, time`, 'Tokens', 'FLOPs', 'Reaches 2x', 'Verdict', 'Reason', 'Measured at'],
      rows: analysis.comparisons.map((comparison) => [
        displayName(comparison.baseline),
        `up to ${PAPER_CLAIM.speedup}x`,
        formatSpeedup(comparison, 'time'),
        formatSpeedup(comparison, 'tokens'),
        formatSpeedup(comparison, 'flops'),
        formatYesNo(comparison.claim.reachesPaperSpeedup),
        `**${comparison.claim.verdict}**`,
        comparison.claim.reason,
        comparison.scale,
      ]),
    },
    { kind: 'paragraph', text: `Verdict rule. ${describeVerdictRule(analysis.singleSeedMargin)}` },
    { kind: 'heading', level: 2, text: 'Time to target' },
    {
      kind: 'paragraph',
      text:
        `Each target is a baseline's final validation perplexity. The time is the training time (evaluation excluded) at which ` +
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
            speedup.subject === null ? 'not reached' : formatFigure(speedup.subject, formatter) + reachedSuffix(comparison, axis, false),
            formatSpeedup(comparison, axis),
          ];
        }),
      ]),
    },
  ];
}

function noComparisonReason(analysis: Analysis): string {
  if (analysis.subject === null) return 'No speedup can be measured: the run has no sMLP model.';
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
    ? 'Figures are means over seeds with the 95% t interval in brackets.'
    : 'One seed: figures have no interval.';
}

function formatYesNo(value: boolean | null): string {
  if (value === null) return 'n/a';
  return value ? 'yes' : 'no';
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

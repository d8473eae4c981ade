/**
 * Vega-lite specs of the report's charts. Each spec sets the font explicitly and ends with the
 * provenance footer, so a chart copied out of the report still shows where it came from.
 */
import { scheme } from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { axisValue, type Axis } from './analysis.js';
import { displayName, provenanceLines } from './labels.js';
import { CHART_FONT } from './render.js';
import { groupByLayer, type RoutingHealth } from './routing-health.js';
import type { ModelSummary } from './analysis.js';
import type { ModelRun, RunContext } from './types.js';

/** A chart: a file stem, a title for documents, and its spec. */
export interface ChartSpec {
  /** File name without extension, for example `perplexity-vs-time`. */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

const WIDTH = 560;
const HEIGHT = 300;
/** Smallest plot height of a heatmap, so its rotated axis title fits beside it. */
const MIN_HEATMAP_HEIGHT = 160;

/**
 * Assigns each model a colour of vega's `tableau10` scheme by its place in `names` (the run's model
 * names, in order), keyed by display name. Charts that show only some models (the dropped-fraction
 * chart has no dense model) use the same map, so a model keeps its colour across charts.
 */
export function modelColours(names: readonly string[]): Map<string, string> {
  const palette = scheme('tableau10') as string[];
  const colours = new Map<string, string>();
  for (const name of names.map(displayName)) {
    if (!colours.has(name)) colours.set(name, palette[colours.size % palette.length]);
  }
  return colours;
}

/** The colour encoding of a chart with one mark per model, coloured by `colours` and listed in run order. */
function colourEncoding(runs: readonly ModelRun[], colours: ReadonlyMap<string, string>): Record<string, unknown> {
  const domain = modelOrder(runs);
  const fallback = modelColours(domain);
  return {
    field: 'model',
    type: 'nominal',
    title: 'Model',
    sort: domain,
    scale: { domain, range: domain.map((name) => colours.get(name) ?? fallback.get(name)!) },
  };
}

const AXIS_TITLES: Record<Axis, string> = {
  time: 'Training time (s, evaluation excluded)',
  tokens: 'Training tokens',
  flops: 'Training FLOPs (3 x forward FLOPs per token x tokens)',
};

/**
 * Validation perplexity against one x-axis, a line per model (and per seed, in the model's colour).
 * `colours` (default: by the order of `runs`) comes from `modelColours`.
 */
export function perplexityChart(
  runs: readonly ModelRun[],
  axis: Axis,
  context: RunContext,
  colours: ReadonlyMap<string, string> = modelColours(runs.map((run) => run.name)),
): ChartSpec {
  const values = runs.flatMap((run) =>
    run.evaluations.map((evaluation) => ({
      model: displayName(run.name),
      seed: run.seed,
      x: axisValue(run, axis, evaluation.trainingSeconds, evaluation.tokens),
      perplexity: evaluation.perplexity,
    })),
  );
  const title = `Validation perplexity vs ${axis === 'time' ? 'training time' : axis === 'tokens' ? 'training tokens' : 'training FLOPs'}`;
  return {
    name: `perplexity-vs-${axis}`,
    title,
    spec: withFooter(title, context, {
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: AXIS_TITLES[axis], axis: axis === 'time' ? {} : { format: '~s' } },
        y: {
          field: 'perplexity',
          type: 'quantitative',
          title: 'Validation perplexity',
          scale: { type: 'log', nice: false },
          // vega's log axis leaves some tick labels blank; explicit values are all labelled.
          axis: { values: perplexityTicks(...extent(values.map((value) => value.perplexity))), format: '~r' },
        },
        color: colourEncoding(runs, colours),
        detail: { field: 'seed', type: 'nominal' },
      },
    }),
  };
}

/** Training throughput per model: a bar at the geometric mean over seeds, with the 95% interval when there are several. */
export function throughputChart(models: readonly ModelSummary[], context: RunContext): ChartSpec {
  const values = models.flatMap((model) =>
    model.tokensPerSecond === null
      ? []
      : [
          {
            model: displayName(model.name),
            mean: model.tokensPerSecond.mean,
            low: model.tokensPerSecond.low ?? model.tokensPerSecond.mean,
            high: model.tokensPerSecond.high ?? model.tokensPerSecond.mean,
          },
        ],
  );
  const title = 'Training throughput';
  const x = { field: 'model', type: 'nominal' as const, title: 'Model', sort: null, axis: { labelAngle: 0 } };
  return {
    name: 'tokens-per-second',
    title,
    spec: withFooter(title, context, {
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      layer: [
        {
          mark: { type: 'bar', color: '#4c78a8' },
          encoding: { x, y: { field: 'mean', type: 'quantitative', title: 'Training tokens per second' } },
        },
        { mark: { type: 'rule', color: 'black' }, encoding: { x, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } },
        {
          mark: { type: 'text', dy: -6, baseline: 'bottom' },
          encoding: { x, y: { field: 'high', type: 'quantitative' }, text: { field: 'mean', type: 'quantitative', format: ',.0f' } },
        },
      ],
    }),
  };
}

/**
 * Returns round tick values for a perplexity axis from `min` to `max`: 1, 2 and 5 times powers of
 * ten when the range spans a decade or more (a log axis), else about eight evenly spaced values on a
 * 1, 2 or 5 step.
 */
export function perplexityTicks(min: number, max: number): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max) && min > 0 && max >= min)) return [];
  if (max === min) return [min];
  const round = (value: number): number => Number(value.toPrecision(12));
  const ticks: number[] = [];
  if (max / min >= 10) {
    for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) {
      for (const mantissa of [1, 2, 5]) {
        const value = round(mantissa * 10 ** exponent);
        if (value >= min && value <= max) ticks.push(value);
      }
    }
    return ticks;
  }
  const rawStep = (max - min) / 8;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rawStep)!;
  for (let index = Math.ceil(round(min / step)); index * step <= max * (1 + 1e-12); index++) ticks.push(round(index * step));
  return ticks;
}

function extent(values: readonly number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

/** Expert-load heatmap of one MoE model run: share of each layer's routing choices per expert, last quarter of training. */
export function layerLoadChart(health: RoutingHealth, context: RunContext): ChartSpec {
  const values = health.layers.flatMap((layer) =>
    layer.finalLoadShare.map((share, expert) => ({ layer: layer.layer, expert, share })),
  );
  const title = `${displayName(health.name)} (seed ${health.seed}): expert load per layer, last quarter of training`;
  return {
    name: `expert-load-${fileStem(health.name)}-seed${health.seed}`,
    title,
    spec: withFooter(title, context, heatmap(values, { field: 'layer', title: 'Layer', sort: health.layers.map((layer) => layer.layer) }, 40)),
  };
}

/**
 * Expert load over time of one MoE model run: share of the routing choices per expert, averaged over
 * layers, in up to `bins` equal ranges of steps.
 */
export function loadOverTimeChart(run: ModelRun, context: RunContext, bins = 20): ChartSpec {
  const steps = [...new Set(run.routing.map((point) => point.step))].sort((a, b) => a - b);
  const binSize = Math.max(1, Math.ceil(steps.length / bins));
  const binOfStep = new Map(steps.map((step, index) => [step, steps[Math.floor(index / binSize) * binSize]]));

  // Sum the choices per (bin, expert) over every layer, then normalise each bin.
  const totals = new Map<number, number[]>();
  for (const point of run.routing) {
    const bin = binOfStep.get(point.step)!;
    const sums = totals.get(bin) ?? [];
    point.tokensPerExpert.forEach((value, expert) => (sums[expert] = (sums[expert] ?? 0) + value));
    totals.set(bin, sums);
  }
  const values = [...totals].flatMap(([bin, sums]) => {
    const total = sums.reduce((sum, value) => sum + (value ?? 0), 0);
    return sums.map((value, expert) => ({ step: bin, expert, share: total > 0 ? (value ?? 0) / total : 0 }));
  });

  // A row covers binSize steps and is labelled with its first one.
  const title =
    binSize === 1
      ? `${displayName(run.name)} (seed ${run.seed}): expert load over training, all layers`
      : `${displayName(run.name)} (seed ${run.seed}): expert load over training, all layers, ${binSize} steps a row`;
  return {
    name: `expert-load-over-time-${fileStem(run.name)}-seed${run.seed}`,
    title,
    spec: withFooter(title, context, heatmap(values, { field: 'step', title: 'Training step', sort: 'ascending' }, 16)),
  };
}

/**
 * Dropped-token fraction over training steps, averaged over layers, a line per MoE model run.
 * `colours` (default: by the order of `runs`) comes from `modelColours`.
 */
export function droppedFractionChart(
  runs: readonly ModelRun[],
  context: RunContext,
  colours: ReadonlyMap<string, string> = modelColours(runs.map((run) => run.name)),
): ChartSpec {
  const values = runs.flatMap((run) => {
    const byStep = new Map<number, number[]>();
    for (const points of groupByLayer(run.routing).values()) {
      for (const point of points) byStep.set(point.step, [...(byStep.get(point.step) ?? []), point.droppedFraction]);
    }
    return [...byStep]
      .sort(([a], [b]) => a - b)
      .map(([step, fractions]) => ({
        model: displayName(run.name),
        seed: run.seed,
        step,
        dropped: fractions.reduce((sum, value) => sum + value, 0) / fractions.length,
      }));
  });
  const title = 'Dropped-token fraction over training';
  return {
    name: 'dropped-fraction',
    title,
    spec: withFooter(title, context, {
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: 'line' },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'Training step', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'dropped', type: 'quantitative', title: 'Dropped fraction of routing choices', axis: { format: '.0%' } },
        color: colourEncoding(runs, colours),
        detail: { field: 'seed', type: 'nominal' },
      },
    }),
  };
}

/**
 * Builds a heatmap of share by expert (columns) and `rows.field`; each row is `rowHeight` pixels
 * high, and the plot at least MIN_HEATMAP_HEIGHT.
 */
function heatmap(
  values: Array<Record<string, string | number>>,
  rows: { field: string; title: string; sort: string[] | 'ascending' },
  rowHeight: number,
): Record<string, unknown> {
  const rowCount = new Set(values.map((value) => value[rows.field])).size;
  return {
    width: WIDTH,
    height: Math.max(MIN_HEATMAP_HEIGHT, rowCount * rowHeight),
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      // With many experts the labels would overlap; vega then drops every other one.
      x: { field: 'expert', type: 'ordinal', title: 'Expert', axis: { labelAngle: 0, labelOverlap: 'parity' } },
      y: { field: rows.field, type: 'ordinal', title: rows.title, sort: rows.sort },
      color: {
        field: 'share',
        type: 'quantitative',
        title: 'Share of choices',
        scale: { scheme: 'blues', domainMin: 0 },
        legend: { format: '.0%' },
      },
    },
  };
}

const FOOTER_LINE_HEIGHT = 12;
/** Maximum footer line length, in characters: at the footer's 9 px font it stays within the chart's width. */
const FOOTER_LINE_CHARACTERS = 80;

/**
 * Breaks a footer line longer than `limit` characters after its commas and semicolons, so that a
 * long list (the kernel set) wraps under the chart instead of widening it. A single item longer than
 * the limit keeps a line of its own.
 */
export function wrapFooterLine(line: string, limit = FOOTER_LINE_CHARACTERS): string[] {
  if (line.length <= limit) return [line];
  const pieces = line.match(/[^,;]+[,;]?/g) ?? [line];
  const lines: string[] = [];
  let current = '';
  for (const piece of pieces) {
    if (current !== '' && current.length + piece.length > limit) {
      lines.push(current.trimEnd());
      current = piece.trimStart();
    } else {
      current += piece;
    }
  }
  if (current.trim() !== '') lines.push(current.trimEnd());
  return lines;
}

/** Wraps a single-view spec with the title, the chart font and the provenance footer below it. */
function withFooter(title: string, context: RunContext, view: Record<string, unknown>): TopLevelSpec {
  const footer = provenanceLines(context).flatMap((line) => wrapFooterLine(line));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 15 },
    background: 'white',
    padding: 12,
    config: {
      font: CHART_FONT,
      view: { stroke: '#ddd' },
      axis: { labelFontSize: 11, titleFontSize: 12 },
      legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220 },
    },
    vconcat: [
      view,
      {
        width: WIDTH,
        height: FOOTER_LINE_HEIGHT * footer.length - 2,
        view: { stroke: null },
        data: { values: [{ footer }] },
        mark: { type: 'text', align: 'left', baseline: 'top', fontSize: 9, color: '#555', lineHeight: FOOTER_LINE_HEIGHT },
        encoding: { x: { value: 0 }, y: { value: 0 }, text: { field: 'footer' } },
      },
    ],
  } as unknown as TopLevelSpec;
}

function modelOrder(runs: readonly ModelRun[]): string[] {
  return [...new Set(runs.map((run) => displayName(run.name)))];
}

function fileStem(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

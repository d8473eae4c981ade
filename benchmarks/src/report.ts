import type { BackendDescription } from '@moebench/backend';
import type { CaseResult, VariantRun } from './run.js';
import { VARIANTS, type VariantName } from './variants.js';

/** The variant speedups are measured against, when it ran. */
const BASELINE = 'wasm-stock';

/** Formats every result as one aligned text table, with a speedup column against stock wasm. */
export function formatTable(runs: readonly VariantRun[]): string {
  const results = runs.flatMap((run) => run.results);
  const header = ['case', 'variant', 'steps', 'ms/step', 'tokens/s', 'GFLOP/s', `vs ${BASELINE}`];
  const rows = results.map((result) => {
    if (result.status !== 'measured') return [result.case, result.variant, result.status, '', '', '', ''];
    const baseline = results.find(
      (other) => other.case === result.case && other.variant === BASELINE && other.status === 'measured',
    );
    return [
      result.case,
      result.variant,
      String(result.steps),
      `${result.meanMs!.toFixed(1)} ±${result.rmePercent!.toFixed(0)}%`,
      Math.round(result.tokensPerSecond!).toLocaleString('en-US'),
      result.gflops!.toFixed(2),
      // A time ratio: equal to the GFLOP/s ratio where FLOPs are counted, and defined where they are not.
      baseline === undefined ? '' : `${(baseline.meanMs! / result.meanMs!).toFixed(1)}x`,
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd();
  const legend = runs.map((run) => formatLegendLine(run.variant, run.backend));
  // Reasons can be long (load errors with paths): one line each under the table, first sentence only.
  // One note per variant, status and reason: a backend that did not start skips every case alike.
  const grouped = new Map<string, string[]>();
  for (const result of results.filter((r) => r.status !== 'measured')) {
    const key = `${result.variant} ${result.status}: ${firstSentence(result.reason ?? '')}`;
    grouped.set(key, [...(grouped.get(key) ?? []), result.case]);
  }
  const notes = [...grouped].map(([key, cases]) => {
    const [variantAndStatus, reason] = [key.slice(0, key.indexOf(': ')), key.slice(key.indexOf(': ') + 2)];
    const which = cases.length === 1 ? cases[0] : `${cases.length} cases`;
    return `  ${which} on ${variantAndStatus}: ${reason}`;
  });
  const lines = [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
  if (notes.length > 0) lines.push('', 'not measured:', ...notes);
  lines.push('', 'variants:', ...legend);
  return lines.join('\n');
}

/**
 * Formats one line of a table's `variants:` legend: the variant's label and, for a variant with native
 * kernels, the thread count they ran with. A variant whose backend did not start (`backend` absent)
 * gets no thread count, because the notes above the legend give the reason it was not measured.
 */
export function formatLegendLine(variant: VariantName, backend: BackendDescription | undefined): string {
  const threads = VARIANTS[variant].nativeKernels && backend !== undefined ? `, native threads: ${backend.wasm?.nativeKernels.threads ?? 'unknown'}` : '';
  return `  ${variant}: ${VARIANTS[variant].label}${threads}`;
}

function firstSentence(text: string): string {
  const end = text.indexOf('. ');
  return end < 0 ? text : text.slice(0, end + 1);
}

/** The JSON document `pnpm bench` writes: the same figures as the table, with the backend facts. */
export interface BenchReport {
  /** Name of the run (the file name without `.json`, unless --out chose another path). */
  name: string;
  /** ISO time the run started. */
  startedAt: string;
  /** The command-line arguments of the run. */
  arguments: string[];
  /** Per variant: the backend facts (`describeBackend()`) and its results. */
  runs: VariantRun[];
  /** Every result, flattened, for easy reading. */
  results: CaseResult[];
}

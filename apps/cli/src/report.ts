import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReport } from '@moebench/report';
import { openStore, type ResultsStore } from '@moebench/results';
import { formatNumber } from './progress.js';

/**
 * Writes the report of run `runId` (default: the latest run of the store) into `outDir` with
 * @moebench/report (report.md, report.html, summary.json, charts/), prints a plain table of each
 * model's status, final validation perplexity and mean tokens/s, also kept as `summary.txt`, and
 * returns the path of report.md. `processAlive` is whether the process that trains the run is still
 * alive, for models still marked running; leave it out when unknown.
 */
export async function writeRunReport(
  storePath: string,
  runId: string | undefined,
  outDir: string,
  log: (line: string) => void,
  processAlive?: boolean,
): Promise<string> {
  const store = openStore(storePath, { readonly: true });
  let table: string[];
  try {
    const run = runId === undefined ? store.latestRun() : store.getRun(runId);
    if (run === undefined) throw new Error(`The run store ${storePath} contains no run${runId === undefined ? '' : ` "${runId}"`}.`);
    table = summaryTable(store, run.id);
  } finally {
    store.close();
  }
  for (const line of table) log(line);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'summary.txt'), `${table.join('\n')}\n`);
  const { files } = await writeReport({ storePath, runId, outDir, ...(processAlive === undefined ? {} : { processAlive }) });
  return files[0];
}

/** Builds a plain-text table: model, architecture, status, steps, final validation perplexity, tokens/s. */
export function summaryTable(store: ResultsStore, runId: string): string[] {
  const header = ['model', 'architecture', 'status', 'steps', 'val ppl', 'bits/byte', 'tokens/s', 'train s'];
  const rows = store.listModels(runId).map((model) => {
    const evaluations = store.evaluations(model.id);
    const last = evaluations[evaluations.length - 1];
    const lastStep = store.lastStep(model.id);
    const rate = lastStep && lastStep.trainingSeconds > 0 ? lastStep.tokensSeen / lastStep.trainingSeconds : NaN;
    return [
      model.name,
      model.architecture,
      model.status === 'diverged'
        ? `diverged@${model.divergedStep}`
        : model.status === 'failed' && model.failedAfterStep !== null
          ? `failed@${model.failedAfterStep}`
          : model.status,
      String(lastStep?.step ?? 0),
      last?.perplexity == null ? '-' : last.perplexity.toFixed(3),
      last?.bitsPerByte == null ? '-' : last.bitsPerByte.toFixed(3),
      Number.isFinite(rate) ? formatNumber(rate) : '-',
      lastStep ? lastStep.trainingSeconds.toFixed(1) : '-',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const format = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [format(header), format(widths.map((width) => '-'.repeat(width))), ...rows.map(format)];
}

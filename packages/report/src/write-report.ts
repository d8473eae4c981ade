/**
 * Writes the report files: charts (SVG and PNG), report.md, report.html and summary.json.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyse, AXES, type Analysis, type AnalysisOptions } from './analysis.js';
import {
  droppedFractionChart,
  layerLoadChart,
  loadOverTimeChart,
  modelColours,
  perplexityChart,
  throughputChart,
  type ChartSpec,
} from './charts.js';
import { describeVerdictRule, PAPER_CLAIM } from './claim.js';
import { buildDocument, type ChartReference } from './document.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { findChartFonts, renderPng, renderSvg } from './render.js';
import { readReportData } from './store.js';
import type { ReportData } from './types.js';

/** Folder, under the output folder, that contains the chart files. */
export const CHARTS_FOLDER = 'charts';

/** Options of `writeReportFromData`. */
export interface WriteReportDataOptions extends AnalysisOptions {
  /** Folder to write into; created when missing. Existing report files in it are overwritten. */
  outDir: string;
  /** Font files for PNG rendering. Default: DejaVu Sans regular and bold, found by `findChartFonts`. */
  fontFiles?: string[];
  /** PNG pixels per SVG unit (default 2). */
  pngScale?: number;
}

/** The summary.json document: every figure of the report's tables, plus what they were computed from. */
export interface ReportSummary {
  run: ReportData['run'];
  claim: typeof PAPER_CLAIM;
  verdictRule: string;
  analysis: Analysis;
  /** Chart files, relative to the output folder. */
  charts: string[];
}

/**
 * Analyses `data` and writes the report into `options.outDir`. Returns the absolute paths of every
 * file written, report.md first.
 */
export async function writeReportFromData(data: ReportData, options: WriteReportDataOptions): Promise<{ files: string[] }> {
  const fontFiles = checkWriteOptions(options);
  const analysis = analyse(data, options);

  const outDir = resolve(options.outDir);
  const chartsDir = join(outDir, CHARTS_FOLDER);
  mkdirSync(chartsDir, { recursive: true });

  const charts = buildCharts(data, analysis);
  const files: string[] = [];
  const svgByChart = new Map<string, string>();
  for (const { chart } of charts) {
    const svg = await renderSvg(chart.spec);
    svgByChart.set(chart.name, svg);
    const svgFile = join(chartsDir, `${chart.name}.svg`);
    const pngFile = join(chartsDir, `${chart.name}.png`);
    writeFileSync(svgFile, svg);
    writeFileSync(pngFile, renderPng(svg, fontFiles, options.pngScale ?? DEFAULT_PNG_SCALE).png);
    files.push(svgFile, pngFile);
  }

  const references: ChartReference[] = charts.map(({ chart, section }) => ({ name: chart.name, title: chart.title, section }));
  const blocks = buildDocument(analysis, data.run, references);
  const markdownFile = join(outDir, 'report.md');
  const htmlFile = join(outDir, 'report.html');
  const summaryFile = join(outDir, 'summary.json');
  writeFileSync(markdownFile, renderMarkdown(blocks, CHARTS_FOLDER));
  writeFileSync(htmlFile, renderHtml(blocks, svgByChart, `moebench report: run ${data.run.runId}`));

  const summary: ReportSummary = {
    run: data.run,
    claim: PAPER_CLAIM,
    verdictRule: describeVerdictRule(analysis.singleSeedMargin),
    analysis,
    charts: files.map((file) => file.slice(outDir.length + 1)),
  };
  writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  return { files: [markdownFile, htmlFile, summaryFile, ...files] };
}

const DEFAULT_PNG_SCALE = 2;

/**
 * Checks the output folder, PNG scale and font files before anything is read or written, and returns
 * the font files to render with.
 */
function checkWriteOptions(options: Omit<WriteReportDataOptions, keyof AnalysisOptions>): string[] {
  const { outDir, pngScale = DEFAULT_PNG_SCALE } = options;
  if (typeof outDir !== 'string' || outDir === '') {
    throw new Error(`writeReport: outDir is ${JSON.stringify(outDir)}; pass the folder to write the report into.`);
  }
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) {
    throw new Error(`writeReport: outDir is ${JSON.stringify(outDir)}, which is a file; pass a folder.`);
  }
  if (!(typeof pngScale === 'number' && Number.isFinite(pngScale) && pngScale > 0)) {
    throw new Error(`writeReport: pngScale is ${pngScale}; it must be a finite number > 0.`);
  }
  if (options.fontFiles === undefined) return findChartFonts();
  // resvg draws no text at all without a usable font, so a wrong path must not pass silently.
  if (!Array.isArray(options.fontFiles) || options.fontFiles.length === 0) {
    throw new Error(`writeReport: fontFiles is ${JSON.stringify(options.fontFiles)}; pass the paths of DejaVuSans.ttf and DejaVuSans-Bold.ttf.`);
  }
  options.fontFiles.forEach((file, index) => {
    if (typeof file !== 'string' || !existsSync(file) || !statSync(file).isFile()) {
      throw new Error(
        `writeReport: fontFiles[${index}] is ${JSON.stringify(file)}, which does not exist; pass the paths of DejaVuSans.ttf and DejaVuSans-Bold.ttf.`,
      );
    }
  });
  return options.fontFiles;
}

function buildCharts(data: ReportData, analysis: Analysis): Array<{ chart: ChartSpec; section: ChartReference['section'] }> {
  const evaluated = data.models.filter((run) => run.evaluations.length > 0);
  const routed = data.models.filter((run) => run.routing.length > 0);
  const charts: Array<{ chart: ChartSpec; section: ChartReference['section'] }> = [];
  const colours = modelColours(data.models.map((run) => run.name));

  if (evaluated.length > 0) {
    for (const axis of AXES) charts.push({ chart: perplexityChart(evaluated, axis, data.run, colours), section: 'curves' });
  }
  if (analysis.models.some((model) => model.tokensPerSecond !== null)) {
    charts.push({ chart: throughputChart(analysis.models, data.run), section: 'throughput' });
  }
  if (routed.length > 0) charts.push({ chart: droppedFractionChart(routed, data.run, colours), section: 'routing' });
  for (const health of analysis.routing) {
    const run = routed.find((candidate) => candidate.name === health.name && candidate.seed === health.seed)!;
    charts.push({ chart: layerLoadChart(health, data.run), section: 'routing' });
    charts.push({ chart: loadOverTimeChart(run, data.run), section: 'routing' });
  }
  return charts;
}

/** Options of `writeReport`. */
export interface WriteReportOptions extends Omit<WriteReportDataOptions, 'outDir'> {
  /** Path of the @moebench/results SQLite store. */
  storePath: string;
  /** Run to report on. Default: the most recently started run of the store. */
  runId?: string;
  /** Folder to write into; created when missing. */
  outDir: string;
  /**
   * Whether a process is still training the run, when the caller knows it (for example from the run
   * folder's lock). The store alone cannot tell a live run from a killed one, which both stay
   * `running`. With false such a run reads as stopped without finishing, with true as still training,
   * and when left out the report states that it cannot tell.
   */
  processAlive?: boolean;
}

/**
 * Reads one run from the store at `storePath` and writes its report into `outDir`: report.md,
 * report.html, summary.json and the chart files under charts/. Returns the absolute paths of every
 * file written, report.md first.
 */
export async function writeReport(options: WriteReportOptions): Promise<{ files: string[] }> {
  const { storePath, runId, processAlive, ...rest } = options;
  if (typeof storePath !== 'string' || storePath === '') {
    throw new Error(`writeReport: storePath is ${JSON.stringify(storePath)}; pass the path of a moebench run store.`);
  }
  if (processAlive !== undefined && typeof processAlive !== 'boolean') {
    throw new Error(`writeReport: processAlive is ${JSON.stringify(processAlive)}; pass true, false, or leave it out when unknown.`);
  }
  checkWriteOptions(rest);
  const data = readReportData(storePath, runId);
  if (processAlive !== undefined) data.run.processAlive = processAlive;
  return writeReportFromData(data, rest);
}

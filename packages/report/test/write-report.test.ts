import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyse, buildDocument, renderMarkdown, writeReportFromData, type ReportSummary } from '../src/index.js';
import { modelRun, sampleModels } from './fixtures.js';

const run = {
  runId: 'sample',
  corpus: 'sotu (byte-level)',
  backend: 'wasm',
  hardware: '2 CPU cores',
  versions: { node: '20.20.2' },
  gitSha: 'abcdef0123456789',
  gitDirty: false,
  date: '2026-12-04T20:00:00Z',
  suite: 'smoke',
};

describe('writeReportFromData', () => {
  it('writes report.md, report.html, summary.json and every chart', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'moebench-report-'));
    const { files } = await writeReportFromData({ run, models: sampleModels([1, 2]) }, { outDir });

    const names = files.map((file) => file.slice(outDir.length + 1));
    expect(names.slice(0, 3)).toEqual(['report.md', 'report.html', 'summary.json']);
    // 3 curves, throughput, dropped fraction, and two heatmaps per MoE run (5 MoE models x 2 seeds), as SVG and PNG.
    expect(names.filter((name) => name.endsWith('.svg'))).toHaveLength(5 + 2 * 10);
    expect(names.filter((name) => name.endsWith('.png'))).toHaveLength(5 + 2 * 10);
    for (const file of files) expect(existsSync(file)).toBe(true);

    const markdown = readFileSync(join(outDir, 'report.md'), 'utf8');
    expect(markdown).toContain('![Validation perplexity vs training time](charts/perplexity-vs-time.png)');
    expect(markdown).toContain('| GShard | up to 2x |');
    expect(markdown).toContain('Warning: Switch (seed 2) block1.moe: expert 0 took');

    const html = readFileSync(join(outDir, 'report.html'), 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<svg /g)).toHaveLength(25);
    expect(html).not.toMatch(/<img |<link |<script /);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((match) => match[1]);
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).toContain('fill="url(#expert-load-switch-seed1-gradient_');

    const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as ReportSummary;
    expect(summary.analysis.subject).toBe('smlp');
    expect(summary.analysis.seedCount).toBe(2);
    expect(summary.analysis.comparisons).toHaveLength(6);
    const transformer = summary.analysis.comparisons.find((comparison) => comparison.baseline === 'transformer')!;
    expect(transformer.speedups.time.speedup!.n).toBe(2);
    expect(transformer.claim.verdict).toBe('reproduced');
    expect(summary.charts).toContain('charts/expert-load-gshard-seed2.png');
  });

  it('explains missing speedups instead of empty tables', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'moebench-report-'));
    const models = sampleModels().filter((model) => model.name !== 'smlp');
    await writeReportFromData({ run, models }, { outDir });

    const markdown = readFileSync(join(outDir, 'report.md'), 'utf8');
    expect(markdown).toContain('No speedup can be measured: the run has no sMLP model.');
    expect(markdown).not.toContain('| Baseline |');
    expect(markdown).toContain('| Transformer |');
  });

  it('shows a bounded speedup as unknown', () => {
    const models = [modelRun('smlp', [[5, 100]]), modelRun('switch', [[6, 120]])];
    const markdown = renderMarkdown(buildDocument(analyse({ run, models }), run, []), 'charts');
    const row = markdown.split('\n').find((line) => line.startsWith('| Switch | up to 2x |'))!;
    expect(row).toContain('| unknown (time only bounded in 1 of 1 seeds) |');
    expect(row).toContain('| **inconclusive** |');
    expect(row).not.toContain('not reached');
  });

  it('rejects an empty outDir before any work', async () => {
    await expect(writeReportFromData({ run, models: [] }, { outDir: '' })).rejects.toThrow('writeReport: outDir is ""');
  });

  it('rejects bad options before writing', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'moebench-report-'));
    const outDir = join(parent, 'out');
    const models = sampleModels();
    await expect(writeReportFromData({ run, models }, { outDir, fontFiles: ['/no/such/DejaVuSans.ttf'] })).rejects.toThrow(
      'writeReport: fontFiles[0] is "/no/such/DejaVuSans.ttf", which does not exist; pass the paths of DejaVuSans.ttf and DejaVuSans-Bold.ttf.',
    );
    await expect(writeReportFromData({ run, models }, { outDir, fontFiles: [] })).rejects.toThrow('writeReport: fontFiles is []');
    await expect(writeReportFromData({ run, models }, { outDir, pngScale: 0 })).rejects.toThrow(
      'writeReport: pngScale is 0; it must be a finite number > 0.',
    );
    const file = join(parent, 'a-file');
    writeFileSync(file, 'text');
    await expect(writeReportFromData({ run, models }, { outDir: file })).rejects.toThrow(
      `writeReport: outDir is ${JSON.stringify(file)}, which is a file; pass a folder.`,
    );
    expect(existsSync(outDir)).toBe(false);
  });
});

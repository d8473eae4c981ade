import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import {
  analyse,
  droppedFractionChart,
  findChartFonts,
  layerLoadChart,
  loadOverTimeChart,
  modelColours,
  perplexityChart,
  perplexityTicks,
  renderPng,
  renderSvg,
  throughputChart,
  wrapFooterLine,
} from '../src/index.js';
import { modelRun, sampleModels } from './fixtures.js';

const context = {
  runId: 'test-run',
  corpus: 'sotu',
  backend: 'wasm',
  hardware: '2 CPU cores',
  versions: { node: '20.20.2' },
  gitSha: '0123456789abcdef',
  gitDirty: true,
  date: '2026-12-04T20:00:00Z',
};
const models = sampleModels();
const names = ['Transformer', 'gMLP', 'GShard', 'Switch', 'BASE Layers', 'HASH Layers', 'sMLP'];

/** Decodes a PNG back to RGBA pixels by drawing it inside an SVG with resvg. */
function decodePng(png: Buffer, width: number, height: number): Uint8Array {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">` +
    `<image width="${width}" height="${height}" xlink:href="data:image/png;base64,${png.toString('base64')}"/></svg>`;
  return new Resvg(svg).render().pixels;
}

function luminanceVariance(pixels: Uint8Array): number {
  const values: number[] = [];
  for (let i = 0; i < pixels.length; i += 4) values.push((pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length;
}

describe('perplexity chart', () => {
  it('names both axes, every model and the provenance in the SVG', async () => {
    const svg = await renderSvg(perplexityChart(models, 'time', context).spec);
    expect(svg).toContain('Training time (s, evaluation excluded)');
    expect(svg).toContain('Validation perplexity');
    for (const name of names) expect(svg).toContain(`>${name}<`);
    expect(svg).toContain('corpus sotu');
    expect(svg).toContain('git 0123456789ab (dirty)');
    expect(svg).toContain('font-family="DejaVu Sans"');
  });

  it('renders a PNG of twice the SVG size that is not blank', async () => {
    const svg = await renderSvg(perplexityChart(models, 'flops', context).spec);
    const [, svgWidth, svgHeight] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
    const rendered = renderPng(svg, findChartFonts(), 2);
    expect(rendered.width).toBe(svgWidth * 2);
    expect(rendered.height).toBe(svgHeight * 2);

    // The PNG header stores the size big-endian at bytes 16 and 20.
    expect(rendered.png.readUInt32BE(16)).toBe(rendered.width);
    expect(rendered.png.readUInt32BE(20)).toBe(rendered.height);
    expect(luminanceVariance(decodePng(rendered.png, rendered.width, rendered.height))).toBeGreaterThan(100);

    const directory = join(tmpdir(), 'moebench-report-render-test');
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, 'perplexity-vs-flops.png'), rendered.png);
  });

  it('wraps a long kernel line instead of widening the chart', async () => {
    const kernels = `kernels: native (OpenBLAS, 2 threads) ${Array.from({ length: 12 }, (_, i) => `MoebenchKernel${i}`).join(', ')}; moebench Sum`;
    const short = await renderSvg(perplexityChart(models, 'time', context).spec);
    const long = await renderSvg(perplexityChart(models, 'time', { ...context, kernels }).spec);
    const width = (svg: string) => Number(/<svg[^>]* width="(\d+)"/.exec(svg)![1]);
    expect(width(long)).toBe(width(short));
    expect(long).toContain('MoebenchKernel11');
  });
});

describe('wrapFooterLine', () => {
  it('keeps a short line whole', () => {
    expect(wrapFooterLine('git 0123 · 2026-12-04', 40)).toEqual(['git 0123 · 2026-12-04']);
  });

  it('breaks after commas and semicolons', () => {
    expect(wrapFooterLine('kernels: alpha, beta, gamma; delta, epsilon', 18)).toEqual(['kernels: alpha,', 'beta, gamma;', 'delta, epsilon']);
  });

  it('gives an item longer than the limit its own line', () => {
    expect(wrapFooterLine('a, averyveryverylongitem, b', 8)).toEqual(['a,', 'averyveryverylongitem,', 'b']);
  });
});

describe('perplexityTicks', () => {
  it('labels a narrow range evenly', () => {
    expect(perplexityTicks(90, 120)).toEqual([90, 95, 100, 105, 110, 115, 120]);
    expect(perplexityTicks(193.2, 258.4)).toEqual([200, 210, 220, 230, 240, 250]);
  });

  it('labels a wide range by decade', () => {
    expect(perplexityTicks(4.2, 256)).toEqual([5, 10, 20, 50, 100, 200]);
  });

  it('labels a tiny range', () => {
    expect(perplexityTicks(100, 100)).toEqual([100]);
    expect(perplexityTicks(100.2, 100.7)).toEqual([100.2, 100.3, 100.4, 100.5, 100.6, 100.7]);
  });
});

describe('perplexity axis', () => {
  it('labels every narrow log tick', async () => {
    const narrow = [modelRun('smlp', [[5, 100]]), modelRun('switch', [[6, 120]]), modelRun('gmlp', [[4, 90]])];
    const svg = await renderSvg(perplexityChart(narrow, 'time', context).spec);
    for (const label of ['90', '95', '100', '105', '110', '115', '120']) expect(svg).toContain(`>${label}</text>`);
  });
});

describe('PNG text', () => {
  const darkPixels = (pixels: Uint8Array): number => {
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4) if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 200) count++;
    return count;
  };

  it('draws text only with given fonts', async () => {
    const svg = await renderSvg(throughputChart(analyse({ run: context, models }).models, context).spec);
    const withFonts = renderPng(svg, findChartFonts(), 1);
    const withoutFonts = renderPng(svg, [], 1);
    // Without font files resvg must not fall back to a system font: the labels, titles and footer vanish.
    const textPixels = darkPixels(decodePng(withFonts.png, withFonts.width, withFonts.height));
    const bare = darkPixels(decodePng(withoutFonts.png, withoutFonts.width, withoutFonts.height));
    expect(textPixels - bare).toBeGreaterThan(2000);
  });
});

describe('routing charts', () => {
  const analysis = analyse({ run: context, models });

  it('draws one heatmap cell per layer and expert', async () => {
    const switchHealth = analysis.routing.find((health) => health.name === 'switch')!;
    const chart = layerLoadChart(switchHealth, context);
    const svg = await renderSvg(chart.spec);
    expect(chart.name).toBe('expert-load-switch-seed1');
    expect(svg).toContain('Expert');
    expect(svg).toContain('block1.moe');
    // Two layers x four experts, each cell labelled with its share.
    expect(svg.match(/aria-roledescription="rect mark"/g)).toHaveLength(8);
    expect(svg).toContain('aria-label="Expert: 0; Layer: block1.moe; Share of choices:');
    const rendered = renderPng(svg, findChartFonts(), 1);
    expect(luminanceVariance(decodePng(rendered.png, rendered.width, rendered.height))).toBeGreaterThan(100);
    writeFileSync(join(tmpdir(), 'moebench-report-render-test', 'expert-load.png'), rendered.png);
  });

  it('labels the dropped-fraction and throughput charts', async () => {
    const dropped = await renderSvg(droppedFractionChart(models.filter((run) => run.routing.length > 0), context).spec);
    expect(dropped).toContain('Dropped fraction of routing choices');
    expect(dropped).toContain('>Switch<');
    const throughput = await renderSvg(throughputChart(analysis.models, context).spec);
    expect(throughput).toContain('Training tokens per second');
    for (const name of names) expect(throughput).toContain(`>${name}<`);
  });
});

describe('chart colours and sizes', () => {
  const colourOf = (spec: unknown, name: string): string => {
    const scale = (spec as { vconcat: Array<{ encoding: { color: { scale: { domain: string[]; range: string[] } } } }> }).vconcat[0].encoding.color.scale;
    return scale.range[scale.domain.indexOf(name)];
  };

  it("keeps a model's colour across charts", () => {
    const colours = modelColours(models.map((run) => run.name));
    const curves = perplexityChart(models, 'time', context, colours).spec;
    const dropped = droppedFractionChart(models.filter((run) => run.routing.length > 0), context, colours).spec;
    for (const name of ['GShard', 'Switch', 'sMLP']) expect(colourOf(dropped, name)).toBe(colourOf(curves, name));
    // The dropped-fraction chart lists only the MoE models, so vega's own order would shift the colours.
    expect(colourOf(dropped, 'GShard')).toBe(colours.get('GShard'));
    expect(colourOf(curves, 'Transformer')).not.toBe(colourOf(curves, 'GShard'));
  });

  it('keeps short heatmaps tall enough', async () => {
    const switchRun = models.find((run) => run.name === 'switch')!;
    const short = { ...switchRun, routing: switchRun.routing.filter((point) => point.step <= 3) };
    const svg = await renderSvg(loadOverTimeChart(short, context).spec);
    // Three rows of 16 px would leave the rotated axis title sticking out far above and below.
    const plotHeight = Number(/aria-roledescription="rect mark" d="M0,0h[\d.]+v([\d.]+)h/.exec(svg)![1]) * 3;
    expect(plotHeight).toBeGreaterThanOrEqual(160);
  });
});

describe('findChartFonts', () => {
  it('finds DejaVu Sans regular and bold', () => {
    expect(findChartFonts().map((file) => file.split('/').pop())).toEqual(['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf']);
  });
});

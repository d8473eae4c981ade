import { describe, expect, it } from 'vitest';
import type { StepMetrics } from '@moebench/train';
import { formatDuration, formatNumber, ProgressReporter } from '../src/progress.js';

function step(n: number): StepMetrics {
  return { step: n, loss: 2.5, crossEntropy: 2.5, auxLoss: 0, learningRate: 1e-3, gradientNorm: 1, tokens: 64 * n, tokensPerSecond: 12345, stepSeconds: 0.1, trainingSeconds: 0.1 * n, routing: [] };
}

function capture(isTTY: boolean): { reporter: ProgressReporter; text: () => string } {
  let written = '';
  const reporter = new ProgressReporter({ write: (chunk) => void (written += chunk), isTTY, columns: 200 });
  return { reporter, text: () => written };
}

describe('ProgressReporter', () => {
  it('logs a line per tenth of the budget off a terminal', () => {
    const { reporter, text } = capture(false);
    reporter.startModel('smlp', { unit: 'steps', amount: 100 });
    for (let n = 1; n <= 100; n++) reporter.step(step(n));
    const lines = text().trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^smlp: step 10, loss 2\.5000, 12\.3k tok\/s, \d+:\d\d left$/);
    expect(text()).not.toContain('\r');
  });

  it('redraws one bar line on a terminal', () => {
    const { reporter, text } = capture(true);
    reporter.startModel('gmlp', { unit: 'seconds', amount: 10 });
    reporter.step(step(50));
    expect(text()).toBe('\r\x1b[2Kgmlp [############------------] 50% step 50, loss 2.5000, 12.3k tok/s, 0:05 left');
    expect(text()).not.toContain('\n');
  });

  it('stops redrawing the bar of a model whose training failed', () => {
    const { reporter, text } = capture(true);
    reporter.startModel('gmlp', { unit: 'seconds', amount: 10 });
    reporter.step(step(50));
    reporter.failModel();
    reporter.log('gmlp: training failed after step 50');
    expect(text().endsWith('\r\x1b[2K\r\x1b[2Kgmlp: training failed after step 50\n')).toBe(true);
  });
});

describe('formatNumber', () => {
  it('keeps integer digits', () => {
    expect(formatNumber(1570)).toBe('1570');
    expect(formatNumber(255.4)).toBe('255.4');
    expect(formatNumber(12.0)).toBe('12');
    expect(formatNumber(12345)).toBe('12.3k');
    expect(formatNumber(9.7e6)).toBe('9.70M');
  });

  it('picks the unit after rounding, up to P', () => {
    expect(formatNumber(9.61e9)).toBe('9.61G');
    expect(formatNumber(2.5e12)).toBe('2.50T');
    expect(formatNumber(999_600)).toBe('1.00M');
    expect(formatNumber(999_960_000)).toBe('1.00G');
    expect(formatNumber(9999.6)).toBe('10.0k');
    expect(formatNumber(-12345)).toBe('-12.3k');
  });

});

describe('formatDuration', () => {
  it('formats minutes and hours', () => {
    expect(formatDuration(65)).toBe('1:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('?');
  });
});

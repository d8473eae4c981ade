import { describe, expect, it } from 'vitest';
import { analyse, checkPaperSpeedup, describeVerdictRule, judgeClaim, positiveSeedFigure, type ReportData, type SeedFigure } from '../src/index.js';
import { modelRun, testRun } from './fixtures.js';

const run = testRun;

describe('positiveSeedFigure', () => {
  it('keeps a wide two-seed interval of speedups above 0', () => {
    // ln 0.5 = -ln 2 and ln 2 have mean 0 (geometric mean 1) and sample sd ln 2 * sqrt(2), so the
    // half-width is t(0.975, 1) * ln 2 = 12.706205 * 0.693147 = 8.807270 and the interval is
    // [exp(-8.807270), exp(8.807270)] = [1 / 6682.65, 6682.65]. The linear one is 1.25 ± 9.53.
    const figure = positiveSeedFigure([0.5, 2]);
    expect(figure.scale).toBe('log');
    expect(figure.mean).toBe(1);
    expect(figure.high).toBeCloseTo(6682.65, 1);
    expect(figure.low).toBeCloseTo(1 / 6682.65, 8);
    expect(figure.low!).toBeGreaterThan(0);
    expect(figure.values).toEqual([0.5, 2]);
  });

  it('gives the geometric mean and the exponentiated t interval of the logs', () => {
    // ln 2, ln 4, ln 8 = ln 2 x (1, 2, 3): mean 2 ln 2 (geometric mean 4), sample sd ln 2, half-width
    // 4.302653 * 0.693147 / sqrt(3) = 1.721873, interval 4 x exp(-+1.721873) = [0.714924, 22.379993].
    const figure = positiveSeedFigure([2, 4, 8]);
    expect(figure.mean).toBeCloseTo(4, 12);
    expect(figure.low).toBeCloseTo(0.714924, 5);
    expect(figure.high).toBeCloseTo(22.379993, 5);
    expect(figure.n).toBe(3);
  });

  it('gives inverse values reciprocal figures', () => {
    const forward = positiveSeedFigure([2, 4, 8]);
    const inverse = positiveSeedFigure([1 / 2, 1 / 4, 1 / 8]);
    expect(inverse.mean).toBeCloseTo(1 / forward.mean, 12);
    expect(inverse.low).toBeCloseTo(1 / forward.high!, 12);
    expect(inverse.high).toBeCloseTo(1 / forward.low!, 12);
  });

  it('returns equal values exactly with a zero-width interval', () => {
    expect(positiveSeedFigure([3, 3, 3])).toEqual({ mean: 3, low: 3, high: 3, n: 3, values: [3, 3, 3], scale: 'log' });
  });

  it('has no interval with one value', () => {
    expect(positiveSeedFigure([5])).toEqual({ mean: 5, low: null, high: null, n: 1, values: [5], scale: 'log' });
  });

  it('falls back to the linear interval raised to 0 when a value is 0', () => {
    // 0, 2, 4: mean 2, sample sd 2, half-width 4.302653 * 2 / sqrt(3) = 4.968275.
    const figure = positiveSeedFigure([0, 2, 4]);
    expect(figure.scale).toBe('linear');
    expect(figure.mean).toBe(2);
    expect(figure.low).toBe(0);
    expect(figure.high).toBeCloseTo(6.968275, 5);
  });

  it('rejects a negative, non-finite or missing value', () => {
    expect(() => positiveSeedFigure([1, -1])).toThrow('positiveSeedFigure: values contains -1; every value must be a finite number >= 0.');
    expect(() => positiveSeedFigure([1, Number.POSITIVE_INFINITY])).toThrow('values contains Infinity');
    expect(() => positiveSeedFigure([])).toThrow('positiveSeedFigure: values is empty');
  });
});

describe('analyse on the log scale', () => {
  // With three seeds, one of which never reaches the target, a linear interval over the two
  // remaining speedups goes below 0. The baseline ends at perplexity 10 after 30 s; sMLP reaches 10 at 60 s (0.5x) and 15 s (2x), and
  // never in seed 3.
  const data: ReportData = {
    run,
    models: [
      modelRun('smlp', [[0, 100], [60, 10]], { seed: 1 }),
      modelRun('smlp', [[0, 100], [15, 10]], { seed: 2 }),
      modelRun('smlp', [[0, 100], [30, 20]], { seed: 3 }),
      ...[1, 2, 3].map((seed) => modelRun('switch', [[0, 100], [30, 10]], { seed })),
    ],
  };
  const comparison = analyse(data).comparisons[0];

  it('keeps the speedup interval of two reached seeds positive', () => {
    const speedup = comparison.speedups.time.speedup!;
    expect(speedup.values).toEqual([0.5, 2]);
    expect(speedup.mean).toBe(1);
    expect(speedup.low).toBeCloseTo(1 / 6682.65, 8);
    expect(speedup.high).toBeCloseTo(6682.65, 1);
    expect(comparison.speedups.time.reachedSeeds).toBe(2);
  });

  it('keeps the time and throughput intervals positive', () => {
    // sMLP's times to the target: 60 and 15 s, geometric mean 30 s.
    const subject = comparison.speedups.time.subject!;
    expect(subject.mean).toBeCloseTo(30, 10);
    expect(subject.low!).toBeGreaterThan(0);
    const smlp = analyse(data).models.find((model) => model.name === 'smlp')!;
    // Every run trains at 1000 tokens per second in the fixture, so every seed gives exactly 1000.
    expect(smlp.tokensPerSecond).toMatchObject({ mean: 1000, low: 1000, high: 1000, scale: 'log' });
    expect(smlp.trainingSeconds!.low!).toBeGreaterThan(0);
    // 60, 15 and 30 s: geometric mean (60 x 15 x 30)^(1/3) = 30.
    expect(smlp.trainingSeconds!.mean).toBeCloseTo(30, 10);
  });

  it('keeps bits per byte on the linear scale', () => {
    // The fixture's bits per byte is log2 of the perplexity: 10, 10 and 20 give 3.321928, 3.321928, 4.321928.
    const smlp = analyse(data).models.find((model) => model.name === 'smlp')!;
    expect(smlp.finalBitsPerByte!.scale).toBe('linear');
    expect(smlp.finalBitsPerByte!.mean).toBeCloseTo(Math.log2(10) + 1 / 3, 10);
  });
});

describe('checkPaperSpeedup', () => {
  const oneSeed = (value: number): SeedFigure => ({ mean: value, low: null, high: null, n: 1, values: [value] });
  const seeds = (mean: number, low: number, high: number): SeedFigure => ({ mean, low, high, n: 3, values: [low, mean, high], scale: 'log' });

  it('leaves one seed within 10% of 2x undecided', () => {
    // The margins of the one-seed verdict, 1.1 and 1 / 1.1 around 1, become 2.2 and 1.818 around 2.
    expect(checkPaperSpeedup(oneSeed(2.003))).toBe('undecided');
    expect(checkPaperSpeedup(oneSeed(1.979))).toBe('undecided');
    expect(checkPaperSpeedup(oneSeed(2.19))).toBe('undecided');
  });

  it('decides one seed outside the margin', () => {
    expect(checkPaperSpeedup(oneSeed(2.2))).toBe('yes');
    expect(checkPaperSpeedup(oneSeed(2.28))).toBe('yes');
    expect(checkPaperSpeedup(oneSeed(2 / 1.1))).toBe('no');
    expect(checkPaperSpeedup(oneSeed(1.8))).toBe('no');
  });

  it('follows a given margin', () => {
    expect(checkPaperSpeedup(oneSeed(2.003), 0)).toBe('yes');
    expect(checkPaperSpeedup(oneSeed(1.979), 0)).toBe('no');
    expect(checkPaperSpeedup(oneSeed(2.3), 0.2)).toBe('undecided');
  });

  it('judges several seeds on the interval', () => {
    expect(checkPaperSpeedup(seeds(2.38, 2.02, 2.81))).toBe('yes');
    expect(checkPaperSpeedup(seeds(2.5, 2, 3))).toBe('yes');
    expect(checkPaperSpeedup(seeds(1.5, 1.2, 1.99))).toBe('no');
    expect(checkPaperSpeedup(seeds(2.35, 1.5, 3.67))).toBe('undecided');
  });

  it('gives n/a without a speedup', () => {
    expect(checkPaperSpeedup(null)).toBe('n/a');
  });

  it('feeds the verdict, which says no when sMLP never reaches the target', () => {
    expect(judgeClaim({ speedup: oneSeed(2.003), pairedSeeds: 1, reachedSeeds: 1 }).reachesPaperSpeedup).toBe('undecided');
    expect(judgeClaim({ speedup: null, pairedSeeds: 1, reachedSeeds: 0 }).reachesPaperSpeedup).toBe('no');
    expect(judgeClaim({ speedup: oneSeed(3), pairedSeeds: 1, reachedSeeds: 1, unfinished: ['GShard (seed 1) is interrupted'] })).toEqual({
      verdict: 'inconclusive',
      reason: 'GShard (seed 1) is interrupted: its figures do not cover its whole budget.',
      reachesPaperSpeedup: 'n/a',
    });
  });

  it('is described with its thresholds in the verdict rule', () => {
    const rule = describeVerdictRule(0.1);
    expect(rule).toContain('with one seed yes at 2.20x or more and no at 1.82x or less');
    expect(rule).toContain('geometric mean, with the 95% t interval computed on the log speedups');
  });
});

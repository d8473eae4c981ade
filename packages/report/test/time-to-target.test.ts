import { describe, expect, it } from 'vitest';
import { perplexityAt, seedFigure, studentTQuantile, timeToTarget } from '../src/index.js';

const curve = [
  { x: 0, perplexity: 100 },
  { x: 10, perplexity: 50 },
  { x: 20, perplexity: 30 },
];

describe('timeToTarget', () => {
  it('interpolates linearly between the points around the crossing', () => {
    // 10 + (50 - 40) / (50 - 30) * 10
    expect(timeToTarget(curve, 40)).toBeCloseTo(15, 12);
  });

  it('returns null when the target is never reached', () => {
    expect(timeToTarget(curve, 29.9)).toBeNull();
  });

  it('returns the x of a point exactly at the target', () => {
    expect(timeToTarget(curve, 50)).toBe(10);
  });

  it('takes the first of tied points at the target', () => {
    const plateau = [
      { x: 0, perplexity: 60 },
      { x: 10, perplexity: 50 },
      { x: 20, perplexity: 50 },
    ];
    expect(timeToTarget(plateau, 50)).toBe(10);
  });

  it('returns the first x when the curve starts below the target', () => {
    expect(timeToTarget(curve, 500)).toBe(0);
  });

  it('counts the first crossing of a curve that rises again', () => {
    const bumpy = [
      { x: 0, perplexity: 80 },
      { x: 10, perplexity: 40 },
      { x: 20, perplexity: 60 },
      { x: 30, perplexity: 30 },
    ];
    // 0 + (80 - 50) / (80 - 40) * 10
    expect(timeToTarget(bumpy, 50)).toBeCloseTo(7.5, 12);
  });

  it('returns null for an empty curve', () => {
    expect(timeToTarget([], 10)).toBeNull();
  });

  it('rejects a curve whose x decreases', () => {
    expect(() => timeToTarget([{ x: 5, perplexity: 9 }, { x: 4, perplexity: 8 }], 8)).toThrow(
      'timeToTarget: x decreases from 5 to 4 at point 1; points must be in x order.',
    );
  });

  it('rejects a non-finite perplexity', () => {
    expect(() => timeToTarget([{ x: 0, perplexity: Number.NaN }], 8)).toThrow('point 0 is (x 0, perplexity NaN)');
  });
});

describe('perplexityAt', () => {
  it('interpolates between evaluation points', () => {
    expect(perplexityAt(curve, 15)).toBeCloseTo(40, 12);
    expect(perplexityAt(curve, 10)).toBe(50);
  });

  it('returns null outside the curve', () => {
    expect(perplexityAt(curve, -1)).toBeNull();
    expect(perplexityAt(curve, 21)).toBeNull();
  });
});

describe('studentTQuantile', () => {
  it('matches published 97.5% quantiles', () => {
    // Values from standard t tables.
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(studentTQuantile(0.975, 2)).toBeCloseTo(4.3027, 4);
    expect(studentTQuantile(0.975, 4)).toBeCloseTo(2.7764, 4);
    expect(studentTQuantile(0.975, 10)).toBeCloseTo(2.2281, 4);
    expect(studentTQuantile(0.975, 30)).toBeCloseTo(2.0423, 4);
    expect(studentTQuantile(0.975, 1e6)).toBeCloseTo(1.96, 2);
  });

  it('is antisymmetric around the median', () => {
    expect(studentTQuantile(0.025, 5)).toBeCloseTo(-studentTQuantile(0.975, 5), 10);
    expect(studentTQuantile(0.5, 5)).toBeCloseTo(0, 8);
  });

  it('rejects p outside (0, 1)', () => {
    expect(() => studentTQuantile(1, 3)).toThrow('studentTQuantile: p is 1; it must lie strictly between 0 and 1.');
  });
});

describe('seedFigure', () => {
  it('gives the t interval over three seeds', () => {
    const figure = seedFigure([1, 2, 3]);
    expect(figure.mean).toBe(2);
    // sample sd 1, t(0.975, 2) = 4.302653, half-width 4.302653 / sqrt(3)
    expect(figure.low).toBeCloseTo(2 - 2.484138, 5);
    expect(figure.high).toBeCloseTo(2 + 2.484138, 5);
    expect(figure.n).toBe(3);
  });

  it('gives no interval for one seed', () => {
    expect(seedFigure([4])).toEqual({ mean: 4, low: null, high: null, n: 1, values: [4] });
  });

  it('rejects an empty list', () => {
    expect(() => seedFigure([])).toThrow('seedFigure: values is empty');
  });
});

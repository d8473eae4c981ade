/**
 * Means and Student-t confidence intervals over seeds, on the linear scale or on the log scale.
 */

/**
 * Scale a seed figure is summarised on. `linear` gives the arithmetic mean and a t interval of the
 * values. `log` gives the geometric mean and the exponential of a t interval of their logarithms.
 */
export type FigureScale = 'linear' | 'log';

/** A figure measured over one or more seeds. */
export interface SeedFigure {
  /** Mean over the seeds: arithmetic on the linear scale, geometric on the log scale. */
  mean: number;
  /** Lower end of the 95% interval, or null with a single seed. */
  low: number | null;
  /** Upper end of the 95% interval, or null with a single seed. */
  high: number | null;
  /** Number of seeds the figure is computed from. */
  n: number;
  /** The value of each seed, in input order. */
  values: number[];
  /** Scale of `mean`, `low` and `high`. Absent means `linear`. */
  scale?: FigureScale;
}

/**
 * Computes the mean and the two-sided 95% interval mean ± t(0.975, n - 1) · s / √n, s the sample
 * standard deviation. With one value the interval is null: one seed gives no spread.
 */
export function seedFigure(values: number[]): SeedFigure {
  if (values.length === 0) throw new Error('seedFigure: values is empty; pass at least one value.');
  const bad = values.find((value) => !Number.isFinite(value));
  if (bad !== undefined) throw new Error(`seedFigure: values contains ${bad}; every value must be finite.`);

  const n = values.length;
  const mean = values.reduce((sum, value) => sum + value, 0) / n;
  if (n === 1) return { mean, low: null, high: null, n, values: [...values] };

  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (n - 1);
  const halfWidth = studentTQuantile(0.975, n - 1) * Math.sqrt(variance / n);
  return { mean, low: mean - halfWidth, high: mean + halfWidth, n, values: [...values] };
}

/**
 * Summarises a positive quantity (a ratio, a time, a count, a rate, a perplexity) on the log scale.
 * With m and s the mean and sample standard deviation of the logarithms, it returns the geometric
 * mean exp(m) and the 95% interval exp(m ± t(0.975, n - 1) · s / √n). The interval stays above 0,
 * and a speedup and its inverse get reciprocal intervals.
 *
 * Equal values give that value exactly, with an interval of zero width. A value of 0 has no
 * logarithm: the figure is then the linear one (`seedFigure`) with its lower end raised to 0, because
 * the mean of a quantity that is never negative cannot lie below 0.
 *
 * @throws when `values` is empty or contains a negative or non-finite number.
 */
export function positiveSeedFigure(values: number[]): SeedFigure {
  if (values.length === 0) throw new Error('positiveSeedFigure: values is empty; pass at least one value.');
  const bad = values.find((value) => !(Number.isFinite(value) && value >= 0));
  if (bad !== undefined) {
    throw new Error(`positiveSeedFigure: values contains ${bad}; every value must be a finite number >= 0.`);
  }

  if (values.some((value) => value === 0)) {
    const linear = seedFigure(values);
    return { ...linear, low: linear.low === null ? null : Math.max(0, linear.low), scale: 'linear' };
  }
  const n = values.length;
  if (values.every((value) => value === values[0])) {
    const value = values[0];
    return { mean: value, low: n === 1 ? null : value, high: n === 1 ? null : value, n, values: [...values], scale: 'log' };
  }

  const logs = seedFigure(values.map((value) => Math.log(value)));
  return {
    mean: Math.exp(logs.mean),
    low: logs.low === null ? null : Math.exp(logs.low),
    high: logs.high === null ? null : Math.exp(logs.high),
    n,
    values: [...values],
    scale: 'log',
  };
}

/**
 * Returns the p-quantile of Student's t distribution with `degreesOfFreedom` degrees of freedom,
 * found by bisection on the CDF (accurate to about 1e-10).
 */
export function studentTQuantile(p: number, degreesOfFreedom: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p is ${p}; it must lie strictly between 0 and 1.`);
  if (!(degreesOfFreedom > 0)) {
    throw new Error(`studentTQuantile: degreesOfFreedom is ${degreesOfFreedom}; it must be positive.`);
  }
  if (p < 0.5) return -studentTQuantile(1 - p, degreesOfFreedom);

  // The CDF is increasing, so bisect between 0 and an upper bound that is doubled until it is large enough.
  let low = 0;
  let high = 1;
  while (studentTCdf(high, degreesOfFreedom) < p) high *= 2;
  for (let iteration = 0; iteration < 200 && high - low > 1e-12 * Math.max(1, high); iteration++) {
    const middle = (low + high) / 2;
    if (studentTCdf(middle, degreesOfFreedom) < p) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

/** Returns P(T <= t) for Student's t with `degreesOfFreedom` degrees of freedom. */
export function studentTCdf(t: number, degreesOfFreedom: number): number {
  const x = degreesOfFreedom / (degreesOfFreedom + t * t);
  const tail = 0.5 * regularizedIncompleteBeta(x, degreesOfFreedom / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * Regularized incomplete beta function I_x(a, b), evaluated with its continued fraction (modified
 * Lentz method), using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
 */
function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let result = d;
  for (let m = 1; m <= 300; m++) {
    // Even term of the fraction.
    let numerator = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    result *= d * c;

    // Odd term of the fraction.
    numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    result *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return result;
}

/** Natural log of the gamma function (Lanczos approximation, g = 7, 9 coefficients; x > 0). */
function logGamma(x: number): number {
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = coefficients[0];
  for (let i = 1; i < coefficients.length; i++) sum += coefficients[i] / (shifted + i);
  const t = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

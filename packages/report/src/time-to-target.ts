/**
 * Time-to-target and interpolation on a perplexity curve.
 */

/** One point of a validation curve: an x-axis value (seconds, tokens or FLOPs) and the perplexity there. */
export interface CurvePoint {
  x: number;
  perplexity: number;
}

/** Where a curve first reaches a target perplexity. */
export interface TargetCrossing {
  /** The x of the crossing, interpolated between the evaluations around it. */
  x: number;
  /**
   * True when the curve's first point, at x > 0, already reaches the target: the crossing lies at or
   * before that x, and where is unknown, so `x` is only an upper bound.
   */
  beforeFirstPoint: boolean;
}

/**
 * Returns where the curve first reaches `target` (first has perplexity <= target), or null when it
 * never does ("not reached").
 *
 * Between the last point above the target and the first point at or below it the curve is taken as
 * linear in x, so the crossing is interpolated. A point exactly at the target gives its own x. When
 * the first point already reaches the target its x is returned, flagged `beforeFirstPoint` unless
 * that x is 0 (nothing is known before the first point). Later points are ignored, so a curve that
 * rises again still counts its first crossing.
 *
 * @throws when x decreases along the curve or a value is not finite.
 */
export function findCrossing(curve: readonly CurvePoint[], target: number): TargetCrossing | null {
  validateCurve(curve, 'timeToTarget');
  if (!Number.isFinite(target)) throw new Error(`timeToTarget: target is ${target}; it must be a finite perplexity.`);

  for (let i = 0; i < curve.length; i++) {
    const point = curve[i];
    if (point.perplexity > target) continue;
    if (i === 0) return { x: point.x, beforeFirstPoint: point.x > 0 };
    if (point.perplexity === target) return { x: point.x, beforeFirstPoint: false };

    // The previous point is above the target, so the denominator is positive.
    const previous = curve[i - 1];
    const fraction = (previous.perplexity - target) / (previous.perplexity - point.perplexity);
    return { x: previous.x + fraction * (point.x - previous.x), beforeFirstPoint: false };
  }
  return null;
}

/**
 * Returns the x (training seconds, tokens or FLOPs) at which the curve first reaches `target`, or
 * null when it never does: `findCrossing(curve, target)?.x`. When the first point already reaches
 * the target its x is returned; `findCrossing` tells whether that is only a bound.
 *
 * @throws when x decreases along the curve or a value is not finite.
 */
export function timeToTarget(curve: readonly CurvePoint[], target: number): number | null {
  return findCrossing(curve, target)?.x ?? null;
}

/**
 * Returns the perplexity at `x`, linearly interpolated between the two points around it, or null
 * when `x` lies before the first point or after the last one.
 */
export function perplexityAt(curve: readonly CurvePoint[], x: number): number | null {
  validateCurve(curve, 'perplexityAt');
  if (curve.length === 0 || x < curve[0].x || x > curve[curve.length - 1].x) return null;

  for (let i = 0; i < curve.length; i++) {
    const point = curve[i];
    if (point.x === x) return point.perplexity;
    if (point.x > x) {
      const previous = curve[i - 1];
      const fraction = (x - previous.x) / (point.x - previous.x);
      return previous.perplexity + fraction * (point.perplexity - previous.perplexity);
    }
  }
  return null;
}

function validateCurve(curve: readonly CurvePoint[], caller: string): void {
  for (let i = 0; i < curve.length; i++) {
    const { x, perplexity } = curve[i];
    if (!Number.isFinite(x) || !Number.isFinite(perplexity)) {
      throw new Error(`${caller}: point ${i} is (x ${x}, perplexity ${perplexity}); both must be finite numbers.`);
    }
    if (i > 0 && x < curve[i - 1].x) {
      throw new Error(`${caller}: x decreases from ${curve[i - 1].x} to ${x} at point ${i}; points must be in x order.`);
    }
  }
}

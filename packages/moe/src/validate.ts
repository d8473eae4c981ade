/**
 * Option checks shared by the MoE packages. Each throws a RangeError that names the option, the
 * value received and what is allowed, so a bad config fails before any tensor is built.
 */

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return Object.prototype.toString.call(value);
}

/** Throws unless `value` is an integer >= `min`. */
export function requireInteger(owner: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${owner}: ${field} must be an integer >= ${min}, received ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is a finite number in [min, max]. */
export function requireNumber(owner: string, field: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range =
      min === -Infinity && max === Infinity
        ? 'a finite number'
        : max === Infinity
          ? `a finite number >= ${min}`
          : min === -Infinity
            ? `a finite number <= ${max}`
            : `a finite number in [${min}, ${max}]`;
    throw new RangeError(`${owner}: ${field} must be ${range}, received ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is one of `allowed`. */
export function requireOneOf<T extends string>(owner: string, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RangeError(
      `${owner}: ${field} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, received ${describe(value)}`,
    );
  }
  return value as T;
}

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

/** Throws unless `value` is a finite number strictly greater than `bound`. */
export function requireAbove(owner: string, field: string, value: unknown, bound: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= bound) {
    throw new RangeError(`${owner}: ${field} must be a finite number > ${bound}, received ${describe(value)}`);
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

/**
 * Throws unless `options` is an object whose every key is one of `allowed`, so a misspelt option
 * fails instead of silently taking its default. `required` names the fields an empty call lacks.
 */
export function requireOptions(owner: string, options: unknown, allowed: Readonly<Record<string, true>>, required: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${owner}: options must be an object with at least ${required}, received ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(allowed, key)) {
      throw new RangeError(`${owner}: unknown option "${key}"; the options are ${Object.keys(allowed).join(', ')}`);
    }
  }
}

/** Throws unless `value` is a seed: a finite number or a string. */
export function requireSeed(owner: string, field: string, value: unknown): number | string {
  if (!(typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)))) {
    throw new RangeError(`${owner}: ${field} must be a finite number or a string, received ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is undefined or a non-empty string (a variable-name prefix). */
export function requireName(owner: string, field: string, value: unknown): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new RangeError(`${owner}: ${field} must be a non-empty string when given, received ${describe(value)}`);
  }
  return value;
}

/**
 * Throws unless `input` is a float32 tensor [..., dModel] with at least one token and `context` is
 * a router context object (`{ training: boolean, ... }`).
 */
export function requireLayerInput(owner: string, input: { shape: number[]; dtype: string; rank: number; size: number }, dModel: number, context: unknown): void {
  if (input.rank < 2 || input.shape[input.rank - 1] !== dModel || input.size === 0) {
    throw new RangeError(`${owner}: input must have shape [..., ${dModel}] with at least one token, received [${input.shape.join(', ')}]`);
  }
  if (input.dtype !== 'float32') {
    throw new RangeError(`${owner}: input must be float32, received ${input.dtype}`);
  }
  if (context === null || typeof context !== 'object' || typeof (context as { training?: unknown }).training !== 'boolean') {
    throw new TypeError(`${owner}: context must be an object with a boolean training field, received ${describe(context)}`);
  }
}

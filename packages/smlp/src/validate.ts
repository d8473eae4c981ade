/** Option checks that run before any tensor is built; each error names the field, the value and what is allowed. */

/** Throws unless `value` is an integer >= `min`. */
export function checkInteger(owner: string, field: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${owner}: ${field} must be an integer >= ${min}, received ${String(value)}`);
  }
  return value;
}

/** Throws unless `value` is a finite number > 0. */
export function checkPositive(owner: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${owner}: ${field} must be a finite number > 0, received ${String(value)}`);
  }
  return value;
}

/** Throws unless `value` is a number strictly between 0 and 1. */
export function checkFraction(owner: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value >= 1) {
    throw new RangeError(`${owner}: ${field} must be a number strictly between 0 and 1, received ${String(value)}`);
  }
  return value;
}

/** Throws unless `value` is a number or a string (a seed). */
export function checkSeed(owner: string, field: string, value: unknown): number | string {
  if (!((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'string')) {
    throw new TypeError(`${owner}: ${field} must be a finite number or a string, received ${String(value)}`);
  }
  return value;
}

/** Throws unless `value` is undefined or a non-empty string. */
export function checkName(owner: string, field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${owner}: ${field} must be a non-empty string when given, received ${String(value)}`);
  }
  return value;
}

/**
 * Throws unless `shape` is [batch, seqLen, width] with the expected width and seqLen <= maxSeqLen.
 */
export function checkSequenceInput(owner: string, shape: number[], width: number, maxSeqLen: number): void {
  if (shape.length !== 3) {
    throw new RangeError(`${owner}: input must have rank 3 [batch, seqLen, ${width}], received shape [${shape.join(', ')}]`);
  }
  if (shape[2] !== width) {
    throw new RangeError(`${owner}: input width must be ${width}, received shape [${shape.join(', ')}]`);
  }
  if (shape[1] < 1 || shape[1] > maxSeqLen) {
    throw new RangeError(
      `${owner}: sequence length ${shape[1]} is outside 1..${maxSeqLen}; the spatial weights were built for ` +
        `maxSeqLen ${maxSeqLen}, so build the layer with a larger maxSeqLen or pass shorter sequences`,
    );
  }
}

/**
 * Option checks that run before any tensor is built; each error names the field, the value and what
 * is allowed. The number, seed and name checks are @moebench/moe's, which the router packages use.
 */
import { requireAbove, requireInteger, requireName, requireOptions, requireSeed } from '@moebench/moe';

/** Throws unless `value` is an integer >= `min` (default 1). */
export function checkInteger(owner: string, field: string, value: unknown, min = 1): number {
  return requireInteger(owner, field, value, min);
}

/** Throws unless `value` is a finite number > 0. */
export function checkPositive(owner: string, field: string, value: unknown): number {
  return requireAbove(owner, field, value, 0);
}

/** Throws unless `value` is a number strictly between 0 and 1. */
export function checkFraction(owner: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value >= 1) {
    throw new RangeError(`${owner}: ${field} must be a number strictly between 0 and 1, received ${String(value)}`);
  }
  return value;
}

/** Throws unless `value` is a seed: a finite number or a string. */
export const checkSeed = requireSeed;

/** Throws unless `value` is undefined or a non-empty string. */
export const checkName = requireName;

/**
 * Throws unless `options` is an object whose every key is an option of the module (so a misspelt
 * option fails instead of taking its default).
 */
export function checkOptions(owner: string, options: unknown, allowed: Readonly<Record<string, true>>, required = 'dModel and maxSeqLen'): void {
  requireOptions(owner, options, allowed, required);
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

/**
 * Invalid input to the data pipeline: a corpus name, a path, a file's content, a size or an option.
 * `field` names the option or input that was wrong, `value` is the value received and `allowed`
 * describes the accepted values, so a caller (the CLI, a suite validator) can show all three.
 */
export class DataError extends Error {
  /** Option or input that was wrong, for example `corpus`, `paths[0]` or `batchSize`. */
  readonly field: string;
  /** The value received, as text. */
  readonly value: string;
  /** Description of the accepted values. */
  readonly allowed: string;

  /** Builds the message `<field>: <problem> (received <value>). Allowed: <allowed>.` */
  constructor(field: string, value: unknown, problem: string, allowed: string) {
    const shown = describeValue(value);
    super(`${field}: ${problem} (received ${shown}). Allowed: ${allowed}.`);
    this.name = 'DataError';
    this.field = field;
    this.value = shown;
    this.allowed = allowed;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** Throws a DataError unless `value` is an integer of at least `min`. */
export function checkInteger(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new DataError(field, value, `must be an integer >= ${min}`, `an integer >= ${min}`);
  }
  return value;
}

/** Throws a DataError unless `value` is a finite number in the open interval (0, max). */
export function checkFraction(field: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value >= max) {
    throw new DataError(field, value, 'must be a fraction', `a number greater than 0 and less than ${max}`);
  }
  return value;
}

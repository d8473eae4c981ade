/**
 * Invalid use of a run store: a bad path, a value outside what the schema allows, a write to a
 * store opened read-only. `field` names what was wrong, `value` is the value received and `allowed`
 * describes the accepted values.
 */
export class ResultsError extends Error {
  /** Argument or column that was wrong, for example `path`, `status` or `step`. */
  readonly field: string;
  /** The value received, as text. */
  readonly value: string;
  /** Description of the accepted values. */
  readonly allowed: string;

  /** Builds the message `<field>: <problem> (received <value>). Allowed: <allowed>.` */
  constructor(field: string, value: unknown, problem: string, allowed: string) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    super(`${field}: ${problem} (received ${shown}). Allowed: ${allowed}.`);
    this.name = 'ResultsError';
    this.field = field;
    this.value = shown;
    this.allowed = allowed;
  }
}

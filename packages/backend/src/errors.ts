/**
 * A computation met a NaN or an infinite value where it needs finite numbers, for example a router
 * whose affinities overflowed. During training this means the model diverged: @moebench/train's loop
 * ends such a run as `diverged`, as it does for a non-finite loss or gradient norm.
 */
export class NonFiniteError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

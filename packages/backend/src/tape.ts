/**
 * Clean-up after a gradient computation whose forward pass threw.
 *
 * While `tf.grads` or `tf.variableGrads` runs its function, every kernel records a tape node with
 * clones of the tensors its gradient needs. tfjs frees those clones in the backward pass. When the
 * forward pass throws, no backward pass runs: the clones stay allocated, and the next gradient
 * computation starts a new tape without them, so they can never be freed.
 */
import { tf } from './tf.js';

/** The part of the engine's state this module reads: the tape of the gradient computation at depth 0. */
interface TapeState {
  gradientDepth: number;
  activeTape: { saved?: tf.Tensor[] }[] | null;
}

/**
 * Frees the tensors that the tape of a thrown gradient computation saved, and drops that tape. Call
 * it where such an error is caught, outside any gradient computation. It returns the number of
 * tensors freed, and does nothing inside a gradient computation or when no tape is left.
 */
export function releaseAbandonedTape(): number {
  const state = (tf.engine() as unknown as { state: TapeState }).state;
  if (state.gradientDepth !== 0 || state.activeTape == null) return 0;
  let freed = 0;
  for (const node of state.activeTape) {
    for (const tensor of node.saved ?? []) {
      if (!tensor.isDisposed) {
        tensor.dispose();
        freed++;
      }
    }
  }
  state.activeTape = null;
  return freed;
}

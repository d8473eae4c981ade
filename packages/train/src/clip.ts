import { tf } from '@moebench/backend';

/** Result of `clipByGlobalNorm`. */
export interface ClippedGradients {
  /** The gradients, scaled by maxNorm / norm when the norm exceeds maxNorm; new tensors the caller owns. */
  gradients: tf.Tensor[];
  /** Global L2 norm of the gradients before clipping (NaN or Infinity when a gradient is not finite). */
  norm: number;
}

/**
 * Scales a list of gradients so that their global L2 norm is at most `maxNorm`. The global norm is
 * sqrt(sum of g^2 over every element of every gradient). Gradients with a smaller norm pass
 * unchanged. A `maxNorm` of Infinity or 0 turns clipping off but still measures the norm, which is
 * read from the backend (one synchronisation).
 */
export function clipByGlobalNorm(gradients: readonly tf.Tensor[], maxNorm: number): ClippedGradients {
  if (Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new RangeError(`clipByGlobalNorm: maxNorm must be a number >= 0 (0 or Infinity: no clipping), received ${maxNorm}`);
  }
  const norm = tf.tidy(() => {
    if (gradients.length === 0) return 0;
    const squares = gradients.map((gradient) => tf.sum(tf.square(gradient)));
    return Math.sqrt(tf.addN(squares).dataSync()[0]);
  });

  const clipping = maxNorm > 0 && Number.isFinite(maxNorm) && Number.isFinite(norm) && norm > maxNorm;
  const scale = clipping ? maxNorm / norm : 1;
  const clipped = gradients.map((gradient) => (clipping ? tf.mul(gradient, scale) : tf.clone(gradient)));
  return { gradients: clipped, norm };
}

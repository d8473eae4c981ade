import { SUM_OF_SQUARES_KERNEL, hasKernel, tf } from '@moebench/backend';

/** Result of `clipByGlobalNorm`. */
export interface ClippedGradients {
  /** The gradients, scaled by maxNorm / norm when the norm exceeds maxNorm; new tensors the caller owns. */
  gradients: tf.Tensor[];
  /** Global L2 norm of the gradients before clipping (NaN or Infinity when a gradient is not finite). */
  norm: number;
}

/** Result of `clipScale`. */
export interface ClipScale {
  /** maxNorm / norm when the norm exceeds maxNorm (and clipping is on), else 1. */
  scale: number;
  /** Global L2 norm of the gradients before clipping (NaN or Infinity when a gradient is not finite). */
  norm: number;
}

/**
 * Measures the global L2 norm of a list of gradients, sqrt(sum of g^2 over every element of every
 * gradient), and returns the factor that brings it down to `maxNorm`: maxNorm / norm when the norm
 * is larger, else 1. A `maxNorm` of Infinity or 0 turns clipping off (scale 1) but still measures
 * the norm. The norm is one sum of squares per gradient, one addN and one read from the backend,
 * or, where the backend has the native SUM_OF_SQUARES_KERNEL, one kernel call (squares added in
 * float64) and one read. Pass the scale to `AdamW.apply` to clip without copying the gradients.
 */
export function clipScale(gradients: readonly tf.Tensor[], maxNorm: number): ClipScale {
  return measure(gradients, maxNorm, 'clipScale');
}

function measure(gradients: readonly tf.Tensor[], maxNorm: number, caller: string): ClipScale {
  if (Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new RangeError(`${caller}: maxNorm must be a number >= 0 (0 or Infinity: no clipping), received ${maxNorm}`);
  }
  const norm = tf.tidy(() => {
    if (gradients.length === 0) return 0;
    if (hasKernel(SUM_OF_SQUARES_KERNEL) && gradients.every((gradient) => gradient.dtype === 'float32')) {
      const inputs: tf.NamedTensorMap = {};
      gradients.forEach((gradient, i) => (inputs[`x${i}`] = gradient));
      const sum = tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, inputs) as tf.Tensor;
      return Math.sqrt(sum.dataSync()[0]);
    }
    const squares = gradients.map((gradient) => tf.sum(tf.square(gradient)));
    return Math.sqrt(tf.addN(squares).dataSync()[0]);
  });
  const clipping = maxNorm > 0 && Number.isFinite(maxNorm) && Number.isFinite(norm) && norm > maxNorm;
  return { scale: clipping ? maxNorm / norm : 1, norm };
}

/**
 * Scales a list of gradients so that their global L2 norm is at most `maxNorm` (see `clipScale`).
 * Gradients with a smaller norm pass unchanged, as clones.
 */
export function clipByGlobalNorm(gradients: readonly tf.Tensor[], maxNorm: number): ClippedGradients {
  const { scale, norm } = measure(gradients, maxNorm, 'clipByGlobalNorm');
  const clipped = gradients.map((gradient) => (scale !== 1 ? tf.mul(gradient, scale) : tf.clone(gradient)));
  return { gradients: clipped, norm };
}

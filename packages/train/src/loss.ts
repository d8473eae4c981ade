import { SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL, hasKernel, tf } from '@moebench/backend';

/**
 * Computes the per-position negative log-likelihood of `targets` under `logits`, in nats, as a
 * [batch, seqLen] tensor. Log-probabilities are taken in float32 with a log-softmax over the vocabulary.
 * Where the backend has the native softmax cross-entropy kernels (wasm with the addon), the loss
 * and its gradient, (softmax - onehot) * dy, are one kernel each instead of the composite ops. Both
 * paths give NaN for a row with a NaN or Inf logit, except that a -Inf logit at the target alone
 * gives Infinity.
 *
 * @param logits [batch, seqLen, vocab]
 * @param targets [batch, seqLen] int32 token ids in [0, vocab)
 * @throws RangeError on the native path for a target outside [0, vocab).
 */
export function tokenNegativeLogLikelihood(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  const [batch, seqLen, vocab] = logits.shape;
  if (targets.shape[0] !== batch || targets.shape[1] !== seqLen) {
    throw new Error(`Targets have shape [${targets.shape}] but logits have shape [${logits.shape}]; expected targets [${batch}, ${seqLen}]`);
  }
  return tf.tidy(() => {
    const labels = tf.cast(targets, 'int32');
    if (hasKernel(SOFTMAX_CROSS_ENTROPY_KERNEL) && hasKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL)) {
      return fusedNegativeLogLikelihood(tf.cast(logits, 'float32'), labels) as tf.Tensor2D;
    }
    // NOTE: the composite path gives a loss of 0 for a target outside [0, vocab) (its one-hot row is
    // empty) where the native kernel throws.
    const logProbs = tf.logSoftmax(tf.cast(logits, 'float32'), -1);
    const picked = tf.mul(logProbs, tf.oneHot(labels, vocab));
    return tf.neg(tf.sum(picked, -1)) as tf.Tensor2D; // [batch, seqLen]
  });
}

/**
 * Computes the mean cross-entropy (nats per token) of `targets` under `logits` over the positions
 * where `lossMask` is 1 (every position when it is absent). A mask with no counted position gives 0.
 *
 * @param logits [batch, seqLen, vocab]
 * @param targets [batch, seqLen] int32
 * @param lossMask [batch, seqLen] float32, 1 where the position counts
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, lossMask?: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const nll = tokenNegativeLogLikelihood(logits, targets);
    if (lossMask === undefined) return tf.mean(nll) as tf.Scalar;
    const mask = tf.cast(lossMask, 'float32');
    const counted = tf.maximum(tf.sum(mask), 1);
    return tf.div(tf.sum(tf.mul(nll, mask)), counted) as tf.Scalar;
  });
}

/** Computes the negative log-likelihood with the native kernels, recording their gradient kernel on the tape. */
function fusedNegativeLogLikelihood(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  const forward = (x: tf.Tensor, save: tf.GradSaveFunc) => {
    const [nll, rowMax, logSum] = tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_KERNEL, { logits: x, labels }) as tf.Tensor[];
    // The labels are saved too: the gradient runs after this function's tidy has released them.
    save([x, labels, rowMax, logSum]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor => {
      const [savedLogits, savedLabels, savedMax, savedLogSum] = saved;
      const inputs = { logits: savedLogits, labels: savedLabels, rowMax: savedMax, logSum: savedLogSum, dy: tf.cast(dy, 'float32') };
      return tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, inputs) as tf.Tensor;
    };
    return { value: nll, gradFunc };
  };
  // customGrad's type lists the inputs and the save function as one rest parameter.
  const loss = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
  return loss(logits);
}

import { tf } from '@moebench/backend';

/**
 * Computes the per-position negative log-likelihood of `targets` under `logits`, in nats, as a
 * [batch, seqLen] tensor. Log-probabilities are taken in float32 with a log-softmax over the vocabulary.
 *
 * @param logits [batch, seqLen, vocab]
 * @param targets [batch, seqLen] int32 token ids in [0, vocab)
 */
export function tokenNegativeLogLikelihood(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  const [batch, seqLen, vocab] = logits.shape;
  if (targets.shape[0] !== batch || targets.shape[1] !== seqLen) {
    throw new Error(`Targets have shape [${targets.shape}] but logits have shape [${logits.shape}]; expected targets [${batch}, ${seqLen}]`);
  }
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(tf.cast(logits, 'float32'), -1);
    const picked = tf.mul(logProbs, tf.oneHot(tf.cast(targets, 'int32'), vocab));
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

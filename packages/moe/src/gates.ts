import { tf } from '@moebench/backend';

/**
 * Returns probs[s, experts[s * k + j]] as gates [S, k], differentiable with respect to `probs`
 * (tf.topk has no gradient). The one-hot mask [S, k, E] is built in JavaScript, because tf.oneHot
 * rejects a depth of 1 and a single expert is a valid layer. An expert index of -1 gives gate 0.
 *
 * @param probs router probabilities [S, E]
 * @param experts chosen expert of each choice, [S * k]
 */
export function selectGates(probs: tf.Tensor2D, experts: Int32Array, k: number): tf.Tensor2D {
  const [tokens, numExperts] = probs.shape;
  if (experts.length !== tokens * k) {
    throw new RangeError(`selectGates: experts must have tokens x k = ${tokens * k} entries, received ${experts.length}`);
  }
  const mask = new Float32Array(tokens * k * numExperts);
  for (let index = 0; index < experts.length; index++) {
    const expert = experts[index];
    if (expert >= numExperts || expert < -1) {
      throw new RangeError(`selectGates: expert index at ${index} must be in [-1, ${numExperts}), received ${expert}`);
    }
    if (expert >= 0) mask[index * numExperts + expert] = 1;
  }
  return tf.tidy(() => {
    const masked = tf.mul(tf.reshape(probs, [tokens, 1, numExperts]), tf.tensor3d(mask, [tokens, k, numExperts]));
    return tf.sum(masked, 2) as tf.Tensor2D; // [S, k]
  });
}

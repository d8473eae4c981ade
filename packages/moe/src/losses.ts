import { tf } from '@moebench/backend';

/**
 * Computes the load-balancing loss in the Switch Transformer form, weight * E * sum_i f_i * P_i.
 * Here f_i is the fraction of tokens whose first choice is expert i, counted before capacity dropping
 * (so a constant), and P_i is the mean router probability of expert i. Under uniform routing it equals `weight`.
 * Its gradient flows through P only, so it is non-zero whenever the router has parameters.
 *
 * @param probs router probabilities [S, E], differentiable
 * @param firstChoice first-choice expert of each token, [S]
 * @param weight the loss weight alpha
 */
export function balanceLoss(probs: tf.Tensor2D, firstChoice: Int32Array, weight: number): tf.Scalar {
  const [tokens, numExperts] = probs.shape;
  if (firstChoice.length !== tokens) {
    throw new RangeError(`balanceLoss: firstChoice must have ${tokens} entries (one per token), received ${firstChoice.length}`);
  }
  const fractions = new Float32Array(numExperts);
  for (const expert of firstChoice) {
    if (expert < 0 || expert >= numExperts) {
      throw new RangeError(`balanceLoss: first-choice expert must be in [0, ${numExperts}), received ${expert}`);
    }
    fractions[expert] += 1 / tokens;
  }
  return tf.tidy(() => {
    const meanProbs = tf.mean(probs, 0); // [E]
    const dot = tf.sum(tf.mul(meanProbs, tf.tensor1d(fractions)));
    return tf.mul(dot, weight * numExperts) as tf.Scalar;
  });
}

/**
 * Computes the router z-loss (ST-MoE), weight * mean over tokens of logsumexp(logits)^2. It keeps router logits
 * small, which keeps the softmax numerically stable.
 *
 * @param logits router logits [S, E]
 */
export function zLoss(logits: tf.Tensor2D, weight: number): tf.Scalar {
  return tf.tidy(() => {
    const logSumExp = tf.logSumExp(logits, 1); // [S]
    return tf.mul(tf.mean(tf.square(logSumExp)), weight) as tf.Scalar;
  });
}

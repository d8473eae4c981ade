/**
 * Tensor functions the sMLP modules share: the causal token-mixing products. Dense layers, layer
 * normalisation and GELU come from @moebench/moe, which every architecture uses, and are re-exported
 * here for the modules of this package.
 */
import { tf } from '@moebench/backend';

export { addBias, dense, denseSplit, gelu, layerNorm, sumRows } from '@moebench/moe';

/**
 * Returns the [seqLen, seqLen] float32 matrix with ones on and below the diagonal.
 */
export function causalMask(seqLen: number): tf.Tensor2D {
  const values = new Float32Array(seqLen * seqLen);
  for (let row = 0; row < seqLen; row++) {
    for (let col = 0; col <= row; col++) values[row * seqLen + col] = 1;
  }
  return tf.tensor2d(values, [seqLen, seqLen]);
}

/**
 * Mixes tokens causally: out[t, n] = sum over s <= t of weight[t, s] * values[s, n], plus bias[t].
 *
 * `values` is time-major, [seqLen, columns], where the columns are every (batch, channel) pair, so
 * the product is one plain 2D matMul. `weight` [maxSeqLen, maxSeqLen] and `bias` [maxSeqLen] are
 * cut to their top-left seqLen block, and the upper triangle of the weight is masked to zero.
 */
export function causalTokenMixing(values: tf.Tensor2D, weight: tf.Tensor2D, bias: tf.Tensor1D, mask: tf.Tensor2D): tf.Tensor2D {
  const seqLen = values.shape[0];
  const block = weight.shape[0] === seqLen ? weight : (tf.slice(weight, [0, 0], [seqLen, seqLen]) as tf.Tensor2D);
  const blockMask = mask.shape[0] === seqLen ? mask : (tf.slice(mask, [0, 0], [seqLen, seqLen]) as tf.Tensor2D);
  const rowBias = bias.shape[0] === seqLen ? bias : (tf.slice(bias, [0], [seqLen]) as tf.Tensor1D);
  // [seqLen, columns]
  const mixed = tf.matMul(tf.mul(block, blockMask) as tf.Tensor2D, values);
  return tf.add(mixed, tf.reshape(rowBias, [seqLen, 1]));
}

/**
 * Creates a trainable variable from `init` without leaking the initial tensor. The variable is
 * named `<prefix>/<label>` when a prefix is given, else tfjs picks a unique name.
 */
export function makeVariable(init: () => tf.Tensor, prefix: string | undefined, label: string): tf.Variable {
  return tf.tidy(() => tf.variable(init(), true, prefix === undefined ? undefined : `${prefix}/${label}`));
}

/**
 * Mixes tokens causally with one matrix per expert: out[e, t, n] = sum over s <= t of
 * weights[e, t, s] * values[e, s, n], plus bias[e, t], as one batched product.
 *
 * `values` is [experts, seqLen, columns]. The weights [experts, maxSeqLen, maxSeqLen] and the bias
 * [experts, maxSeqLen] are cut to their top-left seqLen block, and `mask` is the [maxSeqLen,
 * maxSeqLen] causal mask.
 */
export function expertTokenMixing(values: tf.Tensor3D, weights: tf.Tensor3D, bias: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor3D {
  const [experts, seqLen] = values.shape;
  const full = weights.shape[1] === seqLen;
  const block = full ? weights : (tf.slice(weights, [0, 0, 0], [experts, seqLen, seqLen]) as tf.Tensor3D);
  const blockMask = full ? mask : (tf.slice(mask, [0, 0], [seqLen, seqLen]) as tf.Tensor2D);
  const rowBias = full ? bias : (tf.slice(bias, [0, 0], [experts, seqLen]) as tf.Tensor2D);
  // [experts, seqLen, columns]
  const mixed = tf.matMul(tf.mul(block, blockMask) as tf.Tensor3D, values);
  return tf.add(mixed, tf.reshape(rowBias, [experts, seqLen, 1])) as tf.Tensor3D;
}

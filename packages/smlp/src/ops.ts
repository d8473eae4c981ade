/**
 * Tensor functions the sMLP modules share: dense layers, layer normalisation, GELU and the causal
 * token-mixing products.
 */
import { tf } from '@moebench/backend';

/**
 * Applies a dense layer to the last axis: x [..., in] times kernel [in, out] plus bias [out].
 */
export function dense(x: tf.Tensor, kernel: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor {
  const inputs = kernel.shape[0];
  const outputs = kernel.shape[1];
  const flat = tf.reshape(x, [-1, inputs]) as tf.Tensor2D;
  const projected = tf.add(tf.matMul(flat, kernel), bias);
  return tf.reshape(projected, [...x.shape.slice(0, -1), outputs]);
}

/**
 * Normalises x over its last axis to zero mean and unit variance, then scales by gamma and shifts
 * by beta (both [features]).
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalised, gamma), beta);
}

/** Applies GELU with the tanh approximation (the form GPT-2 uses), because every tfjs backend has Tanh. */
export function gelu(x: tf.Tensor): tf.Tensor {
  const cubic = tf.mul(tf.pow(x, 3), 0.044715);
  const inner = tf.mul(tf.add(x, cubic), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

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

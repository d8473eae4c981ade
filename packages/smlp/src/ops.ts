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
  const projected = addBias(tf.matMul(flat, kernel), bias);
  return tf.reshape(projected, [...x.shape.slice(0, -1), outputs]);
}

/**
 * Sums a [rows, columns] matrix over its rows as one [1, rows] x [rows, columns] product.
 *
 * The wasm backend of tfjs 4.22 reduces over a leading axis some 200 times slower than this
 * product: `tf.sum(x, 0)` on [2048, 1536] took 60 to 100 ms against 0.3 ms on a shared 2-core x86
 * machine. The stock gradients of a broadcast bias or layer-norm scale run that reduction.
 */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  const ones = tf.ones([1, x.shape[0]]) as tf.Tensor2D;
  return tf.reshape(tf.matMul(ones, x), [x.shape[1]]) as tf.Tensor1D;
}

/** Adds bias [columns] to every row of x [rows, columns]; the bias gradient comes from `sumRows`. */
export const addBias: (x: tf.Tensor2D, bias: tf.Tensor1D) => tf.Tensor2D = tf.customGrad(
  ((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, bias] = inputs as [tf.Tensor2D, tf.Tensor1D];
    return {
      value: tf.add(x, bias),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor2D, sumRows(dy as tf.Tensor2D)],
    };
  }) as Parameters<typeof tf.customGrad>[0],
) as unknown as (x: tf.Tensor2D, bias: tf.Tensor1D) => tf.Tensor2D;

/**
 * Computes x * gamma + beta for x [rows, columns] and gamma, beta [columns]; the gamma and beta
 * gradients come from `sumRows`.
 */
export const scaleShift: (x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor2D = tf.customGrad(
  ((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, gamma, beta, save] = inputs as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    save([x, gamma]);
    return {
      value: tf.add(tf.mul(x, gamma), beta),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = dy as tf.Tensor2D;
        const [savedX, savedGamma] = saved as [tf.Tensor2D, tf.Tensor1D];
        return [tf.mul(upstream, savedGamma), sumRows(tf.mul(upstream, savedX) as tf.Tensor2D), sumRows(upstream)];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0],
) as unknown as (x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor2D;

/**
 * Normalises x over its last axis to zero mean and unit variance, then scales by gamma and shifts
 * by beta (both [features]).
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor {
  const features = x.shape[x.rank - 1];
  const flat = tf.reshape(x, [-1, features]) as tf.Tensor2D;
  const { mean, variance } = tf.moments(flat, 1, true);
  const normalised = tf.mul(tf.sub(flat, mean), tf.rsqrt(tf.add(variance, epsilon))) as tf.Tensor2D;
  return tf.reshape(scaleShift(normalised, gamma, beta), x.shape);
}

/**
 * Applies GELU with the tanh approximation (the form GPT-2 uses), 0.5 x (1 + tanh(u)) with
 * u = sqrt(2 / pi) (x + 0.044715 x^3), written as the identical x * sigmoid(2u).
 *
 * The rewrite is for speed: on the wasm backend of tfjs 4.22, Tanh and Pow each take 10 times as
 * long as Sigmoid and a product (on [256, 8, 1536], shared 2-core x86 machine).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const cubic = tf.mul(tf.mul(x, x), tf.mul(x, 0.044715));
  const inner = tf.mul(tf.add(x, cubic), 2 * Math.sqrt(2 / Math.PI));
  return tf.mul(x, tf.sigmoid(inner));
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

/**
 * Tensor functions the sMLP modules share: a 2D matMul whose gradient avoids transposed-operand
 * matMuls, layer normalisation, GELU and the causal spatial mixing product.
 */
import { tf } from '@moebench/backend';

/**
 * Multiplies a [m, k] by b [k, n] with a gradient that transposes its operands explicitly.
 *
 * The stock gradient of `tf.matMul` calls matMul with `transposeA`/`transposeB` set, and the wasm
 * backend of tfjs 4.22 runs those flags 7x to 30x slower than an explicit transpose followed by a
 * plain matMul ([128, 2048] operands, 2-core x86 machine; see the package README's performance
 * notes). The values are the same as `tf.matMul(a, b)`.
 */
export const matMul2d: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  ((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [a, b, save] = inputs as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = dy as tf.Tensor2D;
        const [savedA, savedB] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [
          tf.matMul(upstream, tf.transpose(savedB) as tf.Tensor2D),
          tf.matMul(tf.transpose(savedA) as tf.Tensor2D, upstream),
        ];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0],
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Applies a dense layer to the last axis: x [..., in] times kernel [in, out] plus bias [out].
 */
export function dense(x: tf.Tensor, kernel: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor {
  const inputs = kernel.shape[0];
  const outputs = kernel.shape[1];
  const flat = tf.reshape(x, [-1, inputs]) as tf.Tensor2D;
  const projected = tf.add(matMul2d(flat, kernel), bias);
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

/** GELU with the tanh approximation (as GPT-2 and BERT use); every tfjs backend has Tanh. */
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
  const mixed = matMul2d(tf.mul(block, blockMask) as tf.Tensor2D, values);
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
 * Multiplies batches of matrices, a [batch, m, k] by b [batch, k, n] (equal batch sizes, no
 * broadcasting), with a gradient that transposes its operands explicitly, for the reason given
 * at `matMul2d`.
 */
export const batchMatMul3d: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = tf.customGrad(
  ((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [a, b, save] = inputs as [tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = dy as tf.Tensor3D;
        const [savedA, savedB] = saved as [tf.Tensor3D, tf.Tensor3D];
        return [
          tf.matMul(upstream, tf.transpose(savedB, [0, 2, 1]) as tf.Tensor3D),
          tf.matMul(tf.transpose(savedA, [0, 2, 1]) as tf.Tensor3D, upstream),
        ];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0],
) as unknown as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Mixes tokens causally with one matrix per expert: out[e, t, n] = sum over s <= t of
 * weights[e, t, s] * values[e, s, n], plus bias[e, t], as one batched product.
 *
 * `values` is [experts, seqLen, columns]; `weights` [experts, maxSeqLen, maxSeqLen] and `bias`
 * [experts, maxSeqLen] are cut to their top-left seqLen block; `mask` is the [maxSeqLen, maxSeqLen]
 * causal mask.
 */
export function expertTokenMixing(values: tf.Tensor3D, weights: tf.Tensor3D, bias: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor3D {
  const [experts, seqLen] = values.shape;
  const full = weights.shape[1] === seqLen;
  const block = full ? weights : (tf.slice(weights, [0, 0, 0], [experts, seqLen, seqLen]) as tf.Tensor3D);
  const blockMask = full ? mask : (tf.slice(mask, [0, 0], [seqLen, seqLen]) as tf.Tensor2D);
  const rowBias = full ? bias : (tf.slice(bias, [0, 0], [experts, seqLen]) as tf.Tensor2D);
  // [experts, seqLen, columns]
  const mixed = batchMatMul3d(tf.mul(block, blockMask) as tf.Tensor3D, values);
  return tf.add(mixed, tf.reshape(rowBias, [experts, seqLen, 1])) as tf.Tensor3D;
}

/**
 * The tensor functions every architecture of moebench shares: GELU, layer normalisation and dense
 * layers. One implementation of each, so that a speed comparison between architectures measures the
 * architectures and not different kernels. Each one is written for the wasm backend of tfjs 4.22,
 * where Erf, Tanh and Pow are slow and a reduction over a leading axis is slower than a matMul with
 * a ones vector; docs/algorithms/moe.md has the figures.
 */
import { GELU_KERNEL, LAYER_NORM_KERNEL, hasKernel, tf } from '@moebench/backend';

/** sqrt(2 / pi) * 2: GELU's tanh argument doubled, since 0.5 (1 + tanh(u)) = sigmoid(2u). */
const GELU_SCALE = 2 * Math.sqrt(2 / Math.PI);
/** The cubic coefficient of the tanh approximation of GELU. */
const GELU_CUBIC = 0.044715;

/**
 * Sums a [rows, columns] matrix over its rows as one [1, rows] x [rows, columns] product, [columns].
 * On wasm this is several times faster than `tf.sum(x, 0)`.
 */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const ones = tf.ones([1, x.shape[0]]) as tf.Tensor2D;
    return tf.reshape(tf.matMul(ones, x), [x.shape[1]]) as tf.Tensor1D;
  });
}

/** The GELU forward pass and its hand-written gradient, as one custom-gradient op. */
const geluOp = tf.customGrad(((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = inputs as [tf.Tensor, tf.GradSaveFunc];
  const squared = tf.mul(x, x);
  const gate = tf.sigmoid(tf.mul(tf.mul(x, tf.add(tf.mul(squared, GELU_CUBIC), 1)), GELU_SCALE));
  save([x, gate]);
  return {
    value: tf.mul(x, gate),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      // d/dx [x s(v)] = s + x s (1 - s) v', with v = c (x + a x^3) and v' = c (1 + 3 a x^2).
      const [savedX, s] = saved;
      const slope = tf.mul(tf.add(tf.mul(tf.mul(savedX, savedX), 3 * GELU_CUBIC), 1), GELU_SCALE);
      const inner = tf.mul(tf.mul(savedX, tf.sub(1, s)), slope);
      return [tf.mul(dy as tf.Tensor, tf.mul(s, tf.add(inner, 1)))];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]);

/**
 * GELU in the tanh approximation (Hendrycks and Gimpel; the form GPT-2 and BERT use),
 * 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3), computed as the identical
 * x * sigmoid(2u) with products only. It differs from the exact x * Phi(x) by less than 5e-4.
 * The choice is for speed: on the wasm backend Erf, Tanh and Pow are each several times slower than
 * Sigmoid and Mul. The gradient is written by hand, which saves the backward pass of every product.
 * On wasm with the native kernels, a float32 x goes through the fused `GELU_KERNEL` instead, which
 * computes the same steps in one pass with a sigmoid accurate to 2 ulp.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && hasKernel(GELU_KERNEL)) return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
  return geluOp(x);
}

/**
 * Runs the fused layer-norm kernel when the backend has it and the inputs are float32, and returns
 * null otherwise. x is [rows, columns] with gamma [columns], or [groups, rows, columns] with gamma
 * [groups, columns]. The kernel's gradient is registered with it.
 */
function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor | null {
  const float32 = x.dtype === 'float32' && gamma.dtype === 'float32' && beta.dtype === 'float32';
  // An epsilon that rounds to 0 in float32 stays on the composite path, which rounds it the same way.
  if (!float32 || !(Math.fround(epsilon) > 0) || !hasKernel(LAYER_NORM_KERNEL)) return null;
  const [y, mean, inverseStd] = tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma, beta }, { epsilon }) as tf.Tensor[];
  // The gradient keeps its own references to the per-row statistics.
  tf.dispose([mean, inverseStd]);
  return y;
}

/** Sums x [groups, rows, columns] over its rows, per group, as one batched product with ones: [groups, columns]. */
function sumRowsPerGroup(x: tf.Tensor3D): tf.Tensor2D {
  const [groups, rows, columns] = x.shape;
  if (groups === 1) return tf.reshape(sumRows(tf.reshape(x, [rows, columns]) as tf.Tensor2D), [1, columns]) as tf.Tensor2D;
  const ones = tf.ones([groups, 1, rows]) as tf.Tensor3D;
  return tf.reshape(tf.matMul(ones, x), [groups, columns]) as tf.Tensor2D;
}

type GroupedLayerNorm = (x: tf.Tensor3D, gamma: tf.Tensor2D, beta: tf.Tensor2D) => tf.Tensor3D;

/**
 * The layer-norm forward pass and its hand-written gradient: x [groups, rows, columns] normalised over
 * its last axis, then scaled and shifted by the group's gamma and beta [groups, columns].
 */
function layerNormOp(epsilon: number): GroupedLayerNorm {
  return tf.customGrad(((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, gamma, beta, save] = inputs as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const [groups, , columns] = x.shape;
    const groupGamma = tf.reshape(gamma, [groups, 1, columns]);
    const mean = tf.mean(x, 2, true); // [groups, rows, 1]
    const centered = tf.sub(x, mean);
    const inverseStd = tf.rsqrt(tf.add(tf.mean(tf.mul(centered, centered), 2, true), epsilon)); // [groups, rows, 1]
    const normalized = tf.mul(centered, inverseStd);
    save([normalized, inverseStd, groupGamma]);
    return {
      value: tf.add(tf.mul(normalized, groupGamma), tf.reshape(beta, [groups, 1, columns])),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = dy as tf.Tensor3D;
        const [n, savedInverseStd, savedGamma] = saved;
        // dx = inverseStd * (g - mean(g) - n * mean(g * n)), with g = dy * gamma and n the normalised input.
        const g = tf.mul(upstream, savedGamma);
        const centeredG = tf.sub(g, tf.mean(g, 2, true));
        const dx = tf.mul(tf.sub(centeredG, tf.mul(n, tf.mean(tf.mul(g, n), 2, true))), savedInverseStd);
        return [dx, sumRowsPerGroup(tf.mul(upstream, n) as tf.Tensor3D), sumRowsPerGroup(upstream)];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as GroupedLayerNorm;
}

const layerNormOps = new Map<number, GroupedLayerNorm>();

/** Returns the layer-norm op for `epsilon`, built once per value. */
function layerNormFor(owner: string, epsilon: number): GroupedLayerNorm {
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw new RangeError(`${owner}: epsilon must be a finite number > 0, received ${String(epsilon)}`);
  }
  let op = layerNormOps.get(epsilon);
  if (op === undefined) {
    op = layerNormOp(epsilon);
    layerNormOps.set(epsilon, op);
  }
  return op;
}

/**
 * Layer normalisation over the last axis of x [..., features]: (x - mean) / sqrt(variance + epsilon),
 * then times gamma plus beta (both [features]). The gradient is written by hand: the input gradient
 * in closed form, and the gamma and beta gradients as products with a ones vector (`sumRows`). On
 * wasm with the native kernels, float32 inputs go through the fused `LAYER_NORM_KERNEL` instead,
 * with the same arithmetic and gradient.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor {
  const features = x.shape[x.rank - 1];
  if (gamma.rank !== 1 || beta.rank !== 1 || gamma.shape[0] !== features || beta.shape[0] !== features) {
    throw new RangeError(
      `layerNorm: gamma and beta must have shape [${features}] to match x [${x.shape.join(', ')}], ` +
        `received [${gamma.shape.join(', ')}] and [${beta.shape.join(', ')}]`,
    );
  }
  const op = rowLayerNormFor(epsilon);
  const normalize = (rows: tf.Tensor2D): tf.Tensor => fusedLayerNorm(rows, gamma, beta, epsilon) ?? op(rows, gamma, beta);
  if (x.rank === 2) return normalize(x as tf.Tensor2D);
  return tf.tidy(() => tf.reshape(normalize(tf.reshape(x, [-1, features]) as tf.Tensor2D), x.shape));
}

type RowLayerNorm = (x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor2D;

/**
 * The layer-norm op of `layerNormOp` for x [rows, columns] with one gamma and beta [columns]: the
 * same arithmetic without the reshapes to a group axis. Every reshape on the tape costs a kernel and,
 * on wasm, a copy of its input saved for the backward pass.
 */
function rowLayerNormOp(epsilon: number): RowLayerNorm {
  return tf.customGrad(((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, gamma, beta, save] = inputs as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = tf.mean(x, 1, true); // [rows, 1]
    const centered = tf.sub(x, mean);
    const inverseStd = tf.rsqrt(tf.add(tf.mean(tf.mul(centered, centered), 1, true), epsilon)); // [rows, 1]
    const normalized = tf.mul(centered, inverseStd);
    save([normalized, inverseStd, gamma]);
    return {
      value: tf.add(tf.mul(normalized, gamma), beta),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = dy as tf.Tensor2D;
        const [n, savedInverseStd, savedGamma] = saved;
        // As in layerNormOp: dx = inverseStd * (g - mean(g) - n * mean(g * n)), with g = dy * gamma.
        const g = tf.mul(upstream, savedGamma);
        const centeredG = tf.sub(g, tf.mean(g, 1, true));
        const dx = tf.mul(tf.sub(centeredG, tf.mul(n, tf.mean(tf.mul(g, n), 1, true))), savedInverseStd);
        return [dx, sumRows(tf.mul(upstream, n) as tf.Tensor2D), sumRows(upstream)];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as RowLayerNorm;
}

const rowLayerNormOps = new Map<number, RowLayerNorm>();

/** Returns the row layer-norm op for `epsilon` (already checked by `layerNormFor`'s rule), built once per value. */
function rowLayerNormFor(epsilon: number): RowLayerNorm {
  layerNormFor('layerNorm', epsilon);
  let op = rowLayerNormOps.get(epsilon);
  if (op === undefined) {
    op = rowLayerNormOp(epsilon);
    rowLayerNormOps.set(epsilon, op);
  }
  return op;
}

/**
 * Layer normalisation with its own gamma and beta per group, as a bank of experts has one layer norm
 * per expert: x [groups, rows, features], gamma and beta [groups, features]. Row r of group e comes
 * out as layerNorm(x[e, r]) with gamma[e] and beta[e]; the same op as `layerNorm`, fused kernel
 * included.
 */
export function groupedLayerNorm(x: tf.Tensor3D, gamma: tf.Tensor2D, beta: tf.Tensor2D, epsilon: number): tf.Tensor3D {
  const [groups, , features] = x.shape;
  const expected = `[${groups}, ${features}]`;
  if (`[${gamma.shape.join(', ')}]` !== expected || `[${beta.shape.join(', ')}]` !== expected) {
    throw new RangeError(
      `groupedLayerNorm: gamma and beta must have shape ${expected} to match x [${x.shape.join(', ')}], ` +
        `received [${gamma.shape.join(', ')}] and [${beta.shape.join(', ')}]`,
    );
  }
  const op = layerNormFor('groupedLayerNorm', epsilon);
  return (fusedLayerNorm(x, gamma, beta, epsilon) as tf.Tensor3D | null) ?? op(x, gamma, beta);
}

/** Adds bias [columns] to every row of x [rows, columns]; the bias gradient is a `sumRows` product. */
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
 * Adds a bias per group to x [groups, rows, columns]: bias [groups, columns], as a bank of experts
 * adds each expert's bias to its slots. The bias gradient is a batched product with ones.
 */
export const addGroupBias: (x: tf.Tensor3D, bias: tf.Tensor2D) => tf.Tensor3D = tf.customGrad(
  ((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, bias] = inputs as [tf.Tensor3D, tf.Tensor2D];
    const [groups, , columns] = x.shape;
    return {
      value: tf.add(x, tf.reshape(bias, [groups, 1, columns])),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor3D, sumRowsPerGroup(dy as tf.Tensor3D)],
    };
  }) as Parameters<typeof tf.customGrad>[0],
) as unknown as (x: tf.Tensor3D, bias: tf.Tensor2D) => tf.Tensor3D;

/** Applies a dense layer to the last axis: x [..., in] times kernel [in, out] plus bias [out]. */
export function dense(x: tf.Tensor, kernel: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor {
  const [inputs, outputs] = kernel.shape;
  if (x.shape[x.rank - 1] !== inputs || bias.rank !== 1 || bias.shape[0] !== outputs) {
    throw new RangeError(
      `dense: x [..., ${inputs}] and bias [${outputs}] must match kernel [${inputs}, ${outputs}], ` +
        `received x [${x.shape.join(', ')}] and bias [${bias.shape.join(', ')}]`,
    );
  }
  // A reshape on the tape is a kernel plus, on wasm, a copy of its input: none for a matrix input.
  if (x.rank === 2) return tf.tidy(() => addBias(tf.matMul(x as tf.Tensor2D, kernel), bias));
  return tf.tidy(() => {
    const flat = tf.reshape(x, [-1, inputs]) as tf.Tensor2D;
    const projected = addBias(tf.matMul(flat, kernel), bias);
    return tf.reshape(projected, [...x.shape.slice(0, -1), outputs]);
  });
}

/**
 * `dense` on x [tokens, in] followed by a split of its output into `parts` equal column blocks: the
 * same values as tf.split(dense(x, kernel, bias), parts, 1), computed as one product per block with
 * that block's columns of kernel [in, out] and bias [out]. On wasm, slicing the small kernel costs a
 * fraction of splitting the [tokens, out] output (timed alone: 0.1 ms against 1.3 ms for 1024 x 414), and
 * the backward pass then pads kernel-sized gradients instead of concatenating activation-sized ones.
 *
 * @throws RangeError when `parts` is not a positive integer that divides the kernel's output width,
 *   or the shapes do not match.
 */
export function denseSplit(x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D, parts: number): tf.Tensor2D[] {
  const [inputs, outputs] = kernel.shape;
  if (!Number.isInteger(parts) || parts < 1 || outputs % parts !== 0) {
    throw new RangeError(`denseSplit: parts must be a positive integer that divides the kernel's ${outputs} outputs, received ${parts}`);
  }
  if (x.rank !== 2 || x.shape[1] !== inputs || bias.rank !== 1 || bias.shape[0] !== outputs) {
    throw new RangeError(
      `denseSplit: x [tokens, ${inputs}] and bias [${outputs}] must match kernel [${inputs}, ${outputs}], ` +
        `received x [${x.shape.join(', ')}] and bias [${bias.shape.join(', ')}]`,
    );
  }
  const width = outputs / parts;
  return tf.tidy(() =>
    Array.from({ length: parts }, (_, part) => {
      const columns = tf.slice(kernel, [0, part * width], [inputs, width]) as tf.Tensor2D;
      return addBias(tf.matMul(x, columns), tf.slice(bias, [part * width], [width]) as tf.Tensor1D);
    }),
  );
}

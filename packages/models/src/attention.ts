import { hasKernel, SOFTMAX_GRAD_KERNEL, SOFTMAX_KERNEL, tf } from '@moebench/backend';

/**
 * The order of the rows of a [batch * time, width] activation: `batch-major` puts the positions of
 * sequence 0 first (row b * time + t), `time-major` puts position 0 of every sequence first (row
 * t * batch + b).
 */
export type RowOrder = 'batch-major' | 'time-major';

/** Sizes of one `causalAttention` call. */
export interface AttentionShape {
  /** Sequences in the batch. */
  batch: number;
  /** Positions per sequence. */
  time: number;
  /** Attention heads; they divide the model width d. */
  heads: number;
}

/** Returns the permutation that undoes `permutation`. */
function inversePermutation(permutation: number[]): number[] {
  const inverse = new Array<number>(permutation.length);
  permutation.forEach((axis, position) => {
    inverse[axis] = position;
  });
  return inverse;
}

/**
 * Causal multi-head self-attention with its query, key and value projection.
 *
 * `x` is [batch * time, d] in `rowOrder`. `kernel` [d, 3d] and `bias` [3d] project it to the
 * queries, the keys and the values (column blocks 0, 1 and 2, each d wide and cut into `heads`
 * blocks of d / heads). Each head computes softmax(q k^T / sqrt(d / heads) + mask) v, and the
 * heads' outputs come back side by side as [batch * time, d] in the same row order. `mask`
 * [time, time] is added to the scores: 0 where a position may attend and a large negative number
 * where it may not.
 *
 * The values equal those of the composite ops. The op runs one product per block of the kernel's
 * columns, because on wasm that is cheaper than slicing the [batch * time, 3d] output. It moves the
 * heads to a batch axis with a transpose of rank 4, runs two batched products around a softmax,
 * and moves the heads back. It is one custom-gradient op, so the tape stores six tensors and not
 * every intermediate. The backward pass joins the three blocks' gradients first, then runs one
 * product each for dx, dkernel and dbias (a product with ones), where the composite ops run three
 * of each. The softmax gradient is tfjs's form, y dy - y sum(y dy), so NaN and infinities reach the
 * same positions.
 *
 * @throws RangeError when the shapes do not match: x [batch * time, d], kernel [d, 3d], bias [3d],
 *   heads dividing d, mask [time, time].
 */
export function causalAttention(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  mask: tf.Tensor2D,
  shape: AttentionShape,
  rowOrder: RowOrder,
): tf.Tensor2D {
  const { batch, time, heads } = shape;
  const [rows, dModel] = x.shape;
  const width = 3 * dModel;
  if (
    x.rank !== 2 ||
    rows !== batch * time ||
    !Number.isInteger(heads) ||
    heads < 1 ||
    dModel % heads !== 0 ||
    kernel.rank !== 2 ||
    kernel.shape[0] !== dModel ||
    kernel.shape[1] !== 3 * dModel ||
    bias.rank !== 1 ||
    bias.shape[0] !== 3 * dModel
  ) {
    throw new RangeError(
      `causalAttention: x must be [batch * time, d] = [${batch * time}, d] with ${heads} heads dividing d, kernel [d, 3d] ` +
        `and bias [3d], received x [${x.shape.join(', ')}], kernel [${kernel.shape.join(', ')}], bias [${bias.shape.join(', ')}]`,
    );
  }
  if (mask.rank !== 2 || mask.shape[0] !== time || mask.shape[1] !== time) {
    throw new RangeError(`causalAttention: mask must be [${time}, ${time}], received [${mask.shape.join(', ')}]`);
  }
  const headWidth = dModel / heads;
  const scale = 1 / Math.sqrt(headWidth);

  // [batch * time, d] viewed as [batch, time, heads, headWidth] (or [time, batch, ...] for time-major
  // rows), and the permutations between that view and [batch, heads, time, headWidth].
  const rowView = rowOrder === 'time-major' ? [time, batch, heads, headWidth] : [batch, time, heads, headWidth];
  const toRows = rowOrder === 'time-major' ? [2, 0, 1, 3] : [0, 2, 1, 3];
  const fromRows = inversePermutation(toRows);
  // [batch, heads, time, headWidth] to [heads, headWidth, batch, time] (or [..., time, batch]): the
  // transpose of one part's [batch * time, d] block.
  const toColumns = rowOrder === 'time-major' ? [1, 3, 2, 0] : [1, 3, 0, 2];
  const toHeads = (part: tf.Tensor): tf.Tensor3D =>
    tf.reshape(tf.transpose(tf.reshape(part, rowView), fromRows), [batch * heads, time, headWidth]) as tf.Tensor3D;
  const fromHeads = (part: tf.Tensor): tf.Tensor2D =>
    tf.reshape(tf.transpose(tf.reshape(part, [batch, heads, time, headWidth]), toRows), [rows, dModel]) as tf.Tensor2D;
  const columnsFromHeads = (part: tf.Tensor): tf.Tensor2D =>
    tf.reshape(tf.transpose(tf.reshape(part, [batch, heads, time, headWidth]), toColumns), [dModel, rows]) as tf.Tensor2D;

  // Softmax y with upstream dy: dx = y dy - y sum(y dy) over the last axis, with the sum as a
  // product with ones, several times faster than Sum on wasm.
  const softmaxGradient = (y: tf.Tensor3D, dy: tf.Tensor3D): tf.Tensor3D => {
    const dyTimesY = tf.mul(dy, y);
    const rowSums = tf.reshape(tf.matMul(tf.reshape(dyTimesY, [batch * heads * time, time]), tf.ones([time, 1])), [batch * heads, time, 1]);
    return tf.sub(dyTimesY, tf.mul(rowSums, y)) as tf.Tensor3D;
  };
  const fused = hasKernel(SOFTMAX_KERNEL) && hasKernel(SOFTMAX_GRAD_KERNEL) && mask.dtype === 'float32';

  const op = tf.customGrad(((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, weights, offsets, save] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // The queries, keys and values, each [batch * heads, time, headWidth]
    const [q, k, v] = [0, 1, 2].map((part) => {
      const columns = tf.slice(weights, [0, part * dModel], [dModel, dModel]) as tf.Tensor2D;
      const projected = tf.add(tf.matMul(input, columns), tf.slice(offsets, [part * dModel], [dModel]));
      return toHeads(projected);
    });
    const scaledQ = tf.mul(q, scale);
    const scores = tf.matMul(scaledQ, k, false, true); // [batch * heads, time, time]
    // The native fused softmax adds the mask itself; its gradient is one kernel instead of four.
    const probabilities = fused
      ? (tf.engine().runKernel(SOFTMAX_KERNEL, { x: scores, bias: mask }) as tf.Tensor3D)
      : tf.softmax(tf.add(scores, mask));
    const mixed = tf.matMul(probabilities, v); // [batch * heads, time, headWidth]
    save([input, weights, scaledQ, k, v, probabilities]);
    return {
      value: fromHeads(mixed),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [savedInput, savedWeights] = saved as tf.Tensor2D[];
        const [savedQ, savedK, savedV, savedProbabilities] = saved.slice(2) as tf.Tensor3D[];
        const dMixed = toHeads(dy as tf.Tensor);
        const dProbabilities = tf.matMul(dMixed, savedV, false, true) as tf.Tensor3D;
        const dV = tf.matMul(savedProbabilities, dMixed, true, false);
        const dScores = fused
          ? (tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y: savedProbabilities, dy: dProbabilities }) as tf.Tensor3D)
          : softmaxGradient(savedProbabilities, dProbabilities);
        const dQ = tf.mul(tf.matMul(dScores, savedK), scale);
        const dK = tf.matMul(dScores, savedQ, true, false);
        // [3d, batch * time]: the transpose of the projection's output gradient, built by joining
        // the parts along the leading axis, which wasm copies in three blocks (joining [batch * time, d]
        // blocks along the columns copies row by row).
        const dProjectedT = tf.concat([dQ, dK, dV].map(columnsFromHeads), 0) as tf.Tensor2D;
        // The bias gradient sums each row of dProjectedT, as a product with ones because the wasm
        // Sum over the last axis is several times slower.
        const dBias = tf.reshape(tf.matMul(dProjectedT, tf.ones([rows, 1])), [width]);
        return [tf.matMul(dProjectedT, savedWeights, true, true), tf.matMul(savedInput, dProjectedT, true, true), dBias];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D) => tf.Tensor2D;
  return op(x, kernel, bias);
}

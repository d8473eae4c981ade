/**
 * Gradient fixes for two tfjs 4.22 gradients that fail on every backend, registered over the stock
 * ones when this module loads (tf.ts imports it).
 *
 * - BatchMatMul with a broadcast batch (`[2, m, k] x [1, k, n]`, or a rank-2 operand against a
 *   rank-3 one): the stock gradient returns the broadcast shape, and the engine rejects it
 *   ("The gradient of input 'b' has shape '2,4,5', which does not match ... '1,4,5'"). Here each
 *   gradient is summed over the batch axes its input was broadcast along.
 * - Unpack (`tf.unstack`) along an axis of size 1: the engine hands a one-output op's gradient a
 *   single tensor rather than a list, and the stock gradient passes it to `tf.stack`, which throws.
 *   `tf.linalg.bandPart` on a single matrix unstacks such an axis, so its gradient failed too.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Sums `gradient` over the leading and size-1 batch axes `shape` was broadcast along. */
function sumToShape(gradient: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(gradient.shape, shape)) return gradient;
  const extra = gradient.rank - shape.length;
  const axes: number[] = [];
  for (let axis = 0; axis < gradient.rank - 2; axis++) {
    if (axis < extra || (shape[axis - extra] === 1 && gradient.shape[axis] !== 1)) axes.push(axis);
  }
  return tf.reshape(tf.sum(gradient, axes), shape);
}

const batchMatMulGradient: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const upstream = dy as tf.Tensor;

    // With C = op(A) op(B): dop(A) = dC op(B)^T and dop(B) = op(A)^T dC; a transposed operand's
    // gradient is the transpose of that, written as one product with swapped operands.
    const gradA = (): tf.Tensor => {
      const full = transposeA
        ? tf.matMul(b, upstream, transposeB, true)
        : tf.matMul(upstream, b, false, !transposeB);
      return sumToShape(full, a.shape);
    };
    const gradB = (): tf.Tensor => {
      const full = transposeB
        ? tf.matMul(upstream, a, true, transposeA)
        : tf.matMul(a, upstream, !transposeA, false);
      return sumToShape(full, b.shape);
    };
    return { a: gradA, b: gradB };
  },
};

const unpackGradient: tf.GradConfig = {
  kernelName: tf.Unpack,
  gradFunc: (dy, _saved, attrs) => {
    const { axis } = attrs as unknown as { axis: number };
    const pieces = Array.isArray(dy) ? dy : [dy];
    return { value: () => tf.stack(pieces, axis) };
  },
};

tf.registerGradient(batchMatMulGradient);
tf.registerGradient(unpackGradient);

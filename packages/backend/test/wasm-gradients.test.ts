import { describe, expect, it } from 'vitest';
import { tf } from '../src/index.js';
import { expectWasmMatchesCpu, values } from './compare.js';

/** An input of a case: its shape, and whether its values must be positive (for sqrt, log, ...). */
interface Input {
  shape: number[];
  positive?: boolean;
}

/**
 * Builds `f`'s output and the gradients of a weighted sum of it with respect to every input. The
 * weights are fixed pseudo-random values, so each gradient entry gets a distinct upstream value.
 */
function forwardAndGradients(inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor): () => tf.Tensor[] {
  return () => {
    const xs = inputs.map(({ shape, positive }, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const raw = values(size, 11 + i);
      return tf.tensor(positive ? raw.map((v) => 0.1 + Math.abs(v)) : raw, shape);
    });
    const y = f(...xs);
    const weights = tf.tensor(values(y.size, 97), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), weights)))(xs);
    return [y, ...grads];
  };
}

const SQRT_HALF = Math.SQRT1_2;
const int = (data: number[]): tf.Tensor1D => tf.tensor1d(data, 'int32');

/** Each op training uses, as [name, inputs, function]. */
const CASES: [string, Input[], (...xs: tf.Tensor[]) => tf.Tensor][] = [
  ['gather along axis 0', [{ shape: [5, 3] }], (x) => tf.gather(x, int([4, 0, 4, 1]))],
  ['gather along axis 1', [{ shape: [2, 5, 3] }], (x) => tf.gather(x, int([2, 2, 0]), 1)],
  ['unsortedSegmentSum', [{ shape: [6, 3] }], (x) => tf.unsortedSegmentSum(x, int([1, 0, 3, 1, 1, 2]), 4)],
  ['softmax', [{ shape: [3, 7] }], (x) => tf.softmax(x)],
  ['logSoftmax', [{ shape: [3, 7] }], (x) => tf.logSoftmax(x)],
  [
    'layer norm via moments',
    [{ shape: [4, 6] }, { shape: [6] }, { shape: [6] }],
    (x, gamma, beta) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
    },
  ],
  ['GELU via erf', [{ shape: [4, 5] }], (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, SQRT_HALF))))],
  [
    'GELU via tanh',
    [{ shape: [4, 5] }],
    (x) => {
      const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
    },
  ],
  ['sigmoid', [{ shape: [3, 4] }], (x) => tf.sigmoid(x)],
  ['relu', [{ shape: [3, 4] }], (x) => tf.relu(x)],
  ['matMul', [{ shape: [3, 4] }, { shape: [4, 5] }], (a, b) => tf.matMul(a, b)],
  ['matMul transposeA', [{ shape: [4, 3] }, { shape: [4, 5] }], (a, b) => tf.matMul(a, b, true, false)],
  ['matMul transposeB', [{ shape: [3, 4] }, { shape: [5, 4] }], (a, b) => tf.matMul(a, b, false, true)],
  ['matMul both transposed', [{ shape: [4, 3] }, { shape: [5, 4] }], (a, b) => tf.matMul(a, b, true, true)],
  ['batched matMul', [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], (a, b) => tf.matMul(a, b)],
  ['batched matMul broadcasting b', [{ shape: [2, 3, 4] }, { shape: [1, 4, 5] }], (a, b) => tf.matMul(a, b)],
  [
    'batched matMul broadcasting a rank-2 a, transposed',
    [{ shape: [4, 3] }, { shape: [2, 5, 4] }],
    (a, b) => tf.matMul(a, b, true, true),
  ],
  ['concat', [{ shape: [2, 3] }, { shape: [2, 2] }], (a, b) => tf.concat([a, b], 1)],
  ['slice', [{ shape: [4, 5] }], (x) => tf.slice(x, [1, 2], [2, 3])],
  ['pad', [{ shape: [2, 3] }], (x) => tf.pad(x, [[1, 0], [0, 2]])],
  ['tile', [{ shape: [2, 3] }], (x) => tf.tile(x, [2, 3])],
  ['oneHot times x', [{ shape: [4, 3] }], (x) => tf.mul(tf.oneHot(int([2, 0, 1, 2]), 3), x)],
  ['cumsum', [{ shape: [3, 5] }], (x) => tf.cumsum(x, 1)],
  ['exclusive reverse cumsum', [{ shape: [3, 5] }], (x) => tf.cumsum(x, 1, true, true)],
  [
    'where',
    [{ shape: [2, 3] }, { shape: [2, 3] }],
    (a, b) => tf.where(tf.tensor2d([[1, 0, 1], [0, 0, 1]], [2, 3], 'bool'), a, tf.mul(b, 2)),
  ],
  ['maximum', [{ shape: [3, 3] }, { shape: [3, 3] }], (a, b) => tf.maximum(a, b)],
  ['minimum', [{ shape: [3, 3] }, { shape: [3, 3] }], (a, b) => tf.minimum(a, b)],
  ['sqrt', [{ shape: [5], positive: true }], (x) => tf.sqrt(x)],
  ['rsqrt', [{ shape: [5], positive: true }], (x) => tf.rsqrt(x)],
  ['exp', [{ shape: [5] }], (x) => tf.exp(x)],
  ['log', [{ shape: [5], positive: true }], (x) => tf.log(x)],
  ['square and div', [{ shape: [5] }, { shape: [5], positive: true }], (a, b) => tf.div(tf.square(a), b)],
  ['mean over an axis', [{ shape: [3, 4] }], (x) => tf.mean(x, 1)],
  ['sum over all', [{ shape: [3, 4] }], (x) => tf.sum(x)],
  ['max over an axis', [{ shape: [3, 4] }], (x) => tf.max(x, 0)],
  ['logSumExp', [{ shape: [3, 4] }], (x) => tf.logSumExp(x, 1)],
  ['transpose', [{ shape: [2, 3, 4] }], (x) => tf.transpose(x, [2, 0, 1])],
  ['reshape, expandDims, squeeze', [{ shape: [2, 6] }], (x) => tf.squeeze(tf.expandDims(tf.reshape(x, [3, 4]), 1), [1])],
  ['split', [{ shape: [6, 2] }], (x) => { const [a, b] = tf.split(x, [2, 4], 0); return tf.add(tf.sum(a), tf.sum(tf.mul(b, b))); }],
  ['stack and unstack', [{ shape: [3, 2] }, { shape: [3, 2] }], (a, b) => tf.stack([...tf.unstack(a), ...tf.unstack(b)], 1)],
  ['unstack along a size-1 axis', [{ shape: [1, 3] }], (x) => tf.mul(tf.unstack(x)[0], 2)],
  ['bandPart lower triangle', [{ shape: [4, 4] }], (x) => tf.linalg.bandPart(x, -1, 0)],
  [
    'causal mask from range comparison',
    [{ shape: [4, 4] }],
    (x) => {
      const positions = tf.range(0, 4, 1, 'int32');
      const allowed = tf.greaterEqual(tf.expandDims(positions, 1), tf.expandDims(positions, 0));
      return tf.softmax(tf.where(allowed, x, tf.fill([4, 4], -1e9)));
    },
  ],
  [
    'softmax cross-entropy',
    [{ shape: [4, 6] }],
    (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(int([1, 5, 0, 2]), 6), x),
  ],
  ['abs and clipByValue', [{ shape: [6] }], (x) => tf.clipByValue(tf.abs(x), 0.2, 0.7)],
];

describe('training ops on wasm match cpu, forward and gradient', () => {
  for (const [name, inputs, f] of CASES) {
    it(name, async () => {
      const results = await expectWasmMatchesCpu(forwardAndGradients(inputs, f));
      expect(results.length).toBe(inputs.length + 1);
    });
  }
});

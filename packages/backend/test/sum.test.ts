import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectWasmMatchesCpu, runOn, values } from './compare.js';

/** [shape, axis, keepDims]: leading, middle, innermost, non-contiguous, negative and all axes. */
const CASES: [number[], number | number[], boolean][] = [
  [[1024, 64], 0, false],
  [[1, 64, 32], [0, 1], false],
  [[4, 5, 6], 1, false],
  [[4, 5, 6], 1, true],
  [[2, 3, 4, 5], [1, 2], true],
  [[4, 5, 6], -3, false],
  [[4, 5, 6], 2, false],
  [[4, 5, 6], [0, 2], false],
  [[4, 5, 6], [0, 1, 2], false],
  [[7], 0, false],
];

describe('Sum replacement on wasm', () => {
  for (const [shape, axis, keepDims] of CASES) {
    it(`matches cpu: shape [${shape}], axis ${JSON.stringify(axis)}, keepDims ${keepDims}`, async () => {
      const size = shape.reduce((p, q) => p * q, 1);
      const [sum] = await expectWasmMatchesCpu(() => tf.sum(tf.tensor(values(size, 8), shape), axis, keepDims), 1e-5);
      const reference = await runOn('cpu', () => tf.sum(tf.tensor(values(size, 8), shape), axis, keepDims));
      expect(sum.shape).toEqual(reference[0].shape);
    });
  }

  it('sums a hand-computed column reduction', async () => {
    const [out] = await runOn('wasm', () => tf.sum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), 1));
    expect(out).toEqual({ shape: [2, 2], dtype: 'float32', values: [4, 6, 12, 14] });
  });

  it('keeps int32 sums on the stock kernel', async () => {
    const [out] = await runOn('wasm', () => tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), 0));
    expect(out).toEqual({ shape: [2], dtype: 'int32', values: [4, 6] });
  });

  it('is replaced by default and restored by the stock switch', async () => {
    await initBackend('wasm', { stockKernels: true });
    const stock = tf.getKernel('Sum', 'wasm');
    await initBackend('wasm', { stockKernels: false });
    expect(tf.getKernel('Sum', 'wasm')).not.toBe(stock);
  });
});

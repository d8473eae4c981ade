import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectWasmMatchesCpu, runOn, values } from './compare.js';

describe('UnsortedSegmentSum on wasm', () => {
  it('is registered by initBackend', async () => {
    await initBackend('wasm');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('sums rows, leaving empty segments zero', async () => {
    const [out] = await runOn('wasm', () =>
      tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([2, 0, 2], 'int32'), 4),
    );
    expect(out.shape).toEqual([4, 2]);
    expect(out.values).toEqual([3, 4, 0, 0, 6, 8, 0, 0]);
  });

  it('drops out-of-range ids like cpu', async () => {
    const [out] = await expectWasmMatchesCpu(() =>
      tf.unsortedSegmentSum(tf.tensor1d([1, 10, 100, 1000]), tf.tensor1d([-1, 1, 3, 1], 'int32'), 3),
    );
    expect(out.values).toEqual([0, 1010, 0]);
  });

  // The cpu backend returns float32 here; TensorFlow keeps x's dtype, and so does this kernel.
  it('keeps the int32 dtype', async () => {
    const [out] = await runOn('wasm', () =>
      tf.unsortedSegmentSum(tf.tensor1d([5, -2, 7], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2),
    );
    expect(out).toEqual({ shape: [2], dtype: 'int32', values: [7, 3] });
  });

  // The cpu backend handles only 1-D ids, so this case is checked against hand-computed sums.
  it('accepts 2-D segment ids', async () => {
    const x = Array.from({ length: 2 * 3 * 2 }, (_, i) => i);
    const [out] = await runOn('wasm', () =>
      // tfjs types segment ids as 1-D, but the op and TensorFlow take any prefix of x's shape.
      tf.unsortedSegmentSum(tf.tensor3d(x, [2, 3, 2]), tf.tensor2d([[0, 3, 2], [2, 2, 1]], [2, 3], 'int32') as unknown as tf.Tensor1D, 4),
    );
    // Rows: id 0 <- [0,1]; id 3 <- [2,3]; id 2 <- [4,5] + [6,7] + [8,9]; id 1 <- [10,11].
    expect(out.shape).toEqual([4, 2]);
    expect(out.values).toEqual([0, 1, 10, 11, 18, 21, 2, 3]);
  });

  it('matches cpu on a large case', async () => {
    const ids = Int32Array.from(values(3000, 2), (v) => Math.floor((v + 1) * 250));
    await expectWasmMatchesCpu(() =>
      tf.unsortedSegmentSum(tf.tensor2d(values(3000 * 16, 3), [3000, 16]), tf.tensor1d(ids, 'int32'), 500),
    );
  });

  it('matches cpu gather gradients on two axes', async () => {
    const params = values(6 * 5 * 3, 4);
    for (const axis of [0, 1]) {
      const indices = axis === 0 ? [5, 0, 5, 2] : [4, 4, 1, 0];
      const shapeOut = axis === 0 ? [4, 5, 3] : [6, 4, 3];
      const [grad] = await expectWasmMatchesCpu(() =>
        tf.grad((x: tf.Tensor) =>
          tf.sum(tf.mul(tf.gather(x, tf.tensor1d(indices, 'int32'), axis), tf.tensor(values(4 * (axis === 0 ? 15 : 18), 5), shapeOut))),
        )(tf.tensor3d(params, [6, 5, 3])),
      );
      expect(grad.shape).toEqual([6, 5, 3]);
    }
  });

  it('rejects ids not a prefix of x', async () => {
    await initBackend('wasm');
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const ids = tf.tensor1d([0, 1, 1], 'int32');
    expect(() => tf.unsortedSegmentSum(x, ids, 2)).toThrow(/segmentIds|segment/);
    tf.dispose([x, ids]);
  });
});

import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectWasmMatchesCpu, runOn, values } from './compare.js';

/** [x shape, indices, axis]: rows, repeated and reversed rows, a middle axis, 2-D indices, 1-D x. */
const CASES: [number[], number[] | number[][], number][] = [
  [[6, 4], [5, 0, 0, 3], 0],
  [[2049, 16], Array.from({ length: 300 }, (_, i) => (i * 7) % 2049), 0],
  [[3, 5, 2], [4, 1], 1],
  [[3, 5, 2], [1, 0, 1], 2],
  [[5, 3], [[4, 0], [2, 2]], 0],
  [[7], [6, 1, 1], 0],
  [[4, 3], [3, 1], -2],
];

describe('GatherV2 replacement on wasm', () => {
  for (const [shape, indices, axis] of CASES) {
    it(`matches cpu: x [${shape}], ${JSON.stringify(indices).slice(0, 24)}, axis ${axis}`, async () => {
      const size = shape.reduce((p, q) => p * q, 1);
      await expectWasmMatchesCpu(() => tf.gather(tf.tensor(values(size, 3), shape), tf.tensor(indices, undefined, 'int32'), axis), 0);
    });
  }

  it('gathers hand-picked rows and their gradient', async () => {
    const [out] = await runOn('wasm', () => tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]), tf.tensor1d([2, 0, 2], 'int32')));
    expect(out).toEqual({ shape: [3, 2], dtype: 'float32', values: [5, 6, 1, 2, 5, 6] });
    const [gradient] = await runOn('wasm', () =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d([2, 0, 2], 'int32'))))(tf.zeros([3, 2])),
    );
    expect(gradient.values).toEqual([1, 1, 0, 0, 2, 2]);
  });

  it('gathers int32 values', async () => {
    const [out] = await runOn('wasm', () => tf.gather(tf.tensor1d([10, 20, 30], 'int32'), tf.tensor1d([1, 1, 0], 'int32')));
    expect(out).toEqual({ shape: [3], dtype: 'int32', values: [20, 20, 10] });
  });

  it('rejects an index out of range without leaking', async () => {
    await initBackend('wasm', { stockKernels: false });
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const indices = tf.tensor1d([0, 2], 'int32');
    const before = tf.memory().numTensors;
    expect(() => tf.gather(x, indices)).toThrow('GatherV2: index 2 at position 1 is outside [0, 1]');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, indices]);
  });

  it('is replaced by default and restored by the stock switch', async () => {
    await initBackend('wasm', { stockKernels: true });
    const stock = tf.getKernel('GatherV2', 'wasm');
    await initBackend('wasm', { stockKernels: false });
    expect(tf.getKernel('GatherV2', 'wasm')).not.toBe(stock);
  });
});

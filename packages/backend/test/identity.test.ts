import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectWasmMatchesCpu, runOn, values } from './compare.js';

interface RefCounting {
  refCount(dataId: object): number;
}

function refCount(tensor: tf.Tensor): number {
  return (tf.backend() as unknown as RefCounting).refCount(tensor.dataId);
}

describe('Identity replacement on wasm', () => {
  it('matches cpu for float32, int32 and bool clones', async () => {
    await expectWasmMatchesCpu(
      () => [
        tf.clone(tf.tensor(values(60, 3), [3, 4, 5])),
        tf.clone(tf.tensor2d([1, -2, 3, 4], [2, 2], 'int32')),
        tf.clone(tf.tensor1d([1, 0, 1], 'bool')),
        tf.clone(tf.zeros([0, 4])),
      ],
      0,
    );
  });

  it('shares the input buffer and counts one more reference', async () => {
    await initBackend('wasm', { stockKernels: false });
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    expect(refCount(x)).toBe(2);
    tf.dispose([x, y]);
  });

  it('keeps the output intact when the input is disposed, and frees the buffer with the last of them', async () => {
    await initBackend('wasm', { stockKernels: false });
    const before = tf.memory();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    expect(tf.memory().numTensors).toBe(before.numTensors + 2);
    expect(tf.memory().numBytes).toBe(before.numBytes + 24);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, 2, 3]);
    expect(tf.memory().numTensors).toBe(before.numTensors + 1);
    expect(refCount(y)).toBe(1);
    y.dispose();
    expect(refCount(y)).toBe(0);
    expect(tf.memory()).toMatchObject({ numTensors: before.numTensors, numBytes: before.numBytes, numDataBuffers: before.numDataBuffers });
  });

  it('keeps the input intact when the output is disposed', async () => {
    await initBackend('wasm', { stockKernels: false });
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([4, 5, 6]);
    tf.clone(x).dispose();
    expect(Array.from(await x.data())).toEqual([4, 5, 6]);
    expect(tf.tidy(() => tf.add(x, 1).arraySync())).toEqual([5, 6, 7]);
    expect(refCount(x)).toBe(1);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves the clone unchanged when a variable it was taken from is assigned', async () => {
    const [out] = await runOn('wasm', () => {
      const v = tf.variable(tf.tensor1d([1, 2]));
      const copy = tf.clone(v);
      v.assign(tf.tensor1d([7, 8]));
      v.dispose();
      return copy;
    });
    expect(out.values).toEqual([1, 2]);
  });

  it('passes gradients through a custom gradient that saves its input', async () => {
    const build = (): tf.Tensor[] => {
      const square = tf.customGrad((...inputs) => {
        // tf.customGrad types every argument as Tensor | GradSaveFunc. The input comes first and the save function last.
        const [x, save] = inputs as [tf.Tensor, tf.GradSaveFunc];
        save([x]);
        return { value: tf.square(x), gradFunc: (dy, saved) => tf.mul(dy, tf.mul(saved[0], 2)) };
      });
      const x = tf.tensor1d([1, -2, 3]);
      return [tf.grad((input: tf.Tensor) => tf.sum(square(input) as tf.Tensor))(x)];
    };
    const [grad] = await expectWasmMatchesCpu(build, 0);
    expect(grad.values).toEqual([2, -4, 6]);
  });

  it('is replaced by default and restored by the stock switch', async () => {
    await initBackend('wasm', { stockKernels: true });
    const stock = tf.getKernel('Identity', 'wasm');
    await initBackend('wasm', { stockKernels: false });
    expect(tf.getKernel('Identity', 'wasm')).not.toBe(stock);
    await initBackend('wasm', { stockKernels: true });
    expect(tf.getKernel('Identity', 'wasm')).toBe(stock);
    await initBackend('wasm', { stockKernels: false });
  });
});

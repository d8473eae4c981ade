import { afterEach, describe, expect, it, vi } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectWasmMatchesCpu, runOn, values } from './compare.js';

type Dtype = 'float32' | 'int32' | 'bool';

/** Makes a tensor of the given shape and dtype with deterministic values (small integers for int32, 0/1 for bool). */
function input(shape: number[], dtype: Dtype, seed: number): tf.Tensor {
  const size = shape.reduce((p, q) => p * q, 1);
  const raw = values(size, seed);
  if (dtype === 'float32') return tf.tensor(raw, shape, 'float32');
  if (dtype === 'int32') return tf.tensor(Int32Array.from(raw, (v) => Math.round(v * 1000)), shape, 'int32');
  return tf.tensor(Uint8Array.from(raw, (v) => (v > 0 ? 1 : 0)), shape, 'bool');
}

/** Counts the live data buffers on the active backend (tensors and any temporaries a kernel did not free). */
function liveBuffers(): number {
  return tf.engine().backend.numDataIds();
}

/** [shape, begin, size]: ranks 1 to 6, boxes at either edge, size -1, whole axes and empty boxes. */
const SLICES: [number[], number[], number[]][] = [
  [[7], [0], [7]],
  [[7], [6], [1]],
  [[7], [3], [-1]],
  [[7], [7], [0]],
  [[5, 3], [4, 0], [1, 3]],
  [[5, 3], [1, 1], [3, 2]],
  [[5, 3], [0, 2], [-1, 1]],
  [[5, 3], [2, 0], [0, 3]],
  [[3, 4, 5], [1, 0, 0], [2, 4, 5]],
  [[3, 4, 5], [0, 1, 2], [3, 2, 3]],
  [[3, 4, 5], [2, 3, 4], [1, 1, 1]],
  [[3, 4, 5], [0, 4, 0], [-1, 0, -1]],
  [[2, 3, 1, 5], [1, 1, 0, 0], [1, -1, 1, 4]],
  [[2, 3, 1, 5], [0, 0, 0, 1], [2, 3, 1, 3]],
  [[3, 2, 2, 3, 2], [1, 0, 1, 0, 0], [2, 2, 1, 3, 2]],
  [[3, 2, 2, 3, 2], [0, 1, 0, 2, 1], [-1, 1, 2, 1, 1]],
  [[2, 3, 1, 2, 3, 2], [1, 1, 0, 0, 1, 0], [1, 2, 1, 2, 2, 2]],
  [[2, 3, 1, 2, 3, 2], [0, 2, 0, 1, 0, 1], [-1, 1, -1, 1, -1, 1]],
];

describe('Slice replacement on wasm', () => {
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [index, [shape, begin, size]] of SLICES.entries()) {
      it(`matches cpu: ${dtype} [${shape}] from [${begin}] size [${size}]`, async () => {
        await expectWasmMatchesCpu(() => tf.slice(input(shape, dtype, index + 1), begin, size), 0);
      });
    }
  }

  it('slices hand-picked values: leading rows and a column block', async () => {
    const build = (): tf.Tensor[] => {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [4, 3]);
      return [tf.slice(x, [1, 0], [2, 3]), tf.slice(x, [1, 1], [3, 2])];
    };
    const [rows, block] = await runOn('wasm', build);
    expect(rows).toEqual({ shape: [2, 3], dtype: 'float32', values: [4, 5, 6, 7, 8, 9] });
    expect(block).toEqual({ shape: [3, 2], dtype: 'float32', values: [5, 6, 8, 9, 11, 12] });
  });

  it('copies a scalar through a direct kernel call', async () => {
    // tf.slice rejects scalars, so only a direct kernel call reaches the rank-0 case.
    const [copy] = await runOn('wasm', () => tf.engine().runKernel(tf.Slice, { x: tf.scalar(5, 'int32') }, { begin: [], size: [] }) as tf.Tensor);
    expect(copy).toEqual({ shape: [], dtype: 'int32', values: [5] });
  });

  it('never reads the whole input off the heap', async () => {
    await initBackend('wasm', { stockKernels: false });
    const x = input([64, 16], 'float32', 3);
    const readSync = vi.spyOn(tf.engine().backend, 'readSync');
    const parts = [tf.slice(x, [8, 0], [4, 16]), ...tf.split(x, [10, 54]), ...tf.unstack(tf.slice(x, [0, 0], [3, 16]))];
    expect(readSync).not.toHaveBeenCalled();
    readSync.mockRestore();
    tf.dispose([x, ...parts]);
  });

  it('rejects a box outside the input without leaking', async () => {
    await initBackend('wasm', { stockKernels: false });
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const tensors = tf.memory().numTensors;
    const buffers = liveBuffers();
    // runKernel skips the op's own checks, so the kernel's check is the one that fires.
    expect(() => tf.engine().runKernel(tf.Slice, { x }, { begin: [0, 2], size: [2, 2] })).toThrow(
      'Slice: invalid box on axis 1 of length 3: begin 2, size 2; expected 0 <= begin and begin + size <= 3',
    );
    expect(tf.memory().numTensors).toBe(tensors);
    expect(liveBuffers()).toBe(buffers);
    x.dispose();
  });
});

/** [shape, numOrSizeSplits, axis]: even and uneven pieces, a -1 piece, empty pieces, each axis. */
const SPLITS: [number[], number | number[], number][] = [
  [[10], [3, 7], 0],
  [[10], 5, 0],
  [[7, 4], [1, 2, 4], 0],
  [[7, 4], [3, -1], 0],
  [[7, 4], [0, 4, 0], 1],
  [[7, 4], [1, 3], -1],
  [[3, 5, 2], [2, 2, 1], 1],
  [[3, 5, 2], 2, 2],
  [[2, 3, 4, 5], [1, 3, 1], 3],
  [[2, 3, 4, 5], [2, -1], 2],
];

describe('SplitV replacement on wasm', () => {
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [index, [shape, splits, axis]] of SPLITS.entries()) {
      it(`matches cpu: ${dtype} [${shape}] split ${JSON.stringify(splits)} on axis ${axis}`, async () => {
        await expectWasmMatchesCpu(() => tf.split(input(shape, dtype, index + 7), splits, axis), 0);
      });
    }
  }

  it('splits hand-picked columns into uneven pieces', async () => {
    const pieces = await runOn('wasm', () => tf.split(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]), [1, 3], 1));
    expect(pieces).toEqual([
      { shape: [2, 1], dtype: 'float32', values: [1, 5] },
      { shape: [2, 3], dtype: 'float32', values: [2, 3, 4, 6, 7, 8] },
    ]);
  });

  it('rejects overrunning sizes without leaking pieces', async () => {
    await initBackend('wasm', { stockKernels: false });
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const buffers = liveBuffers();
    // The sizes sum to the axis length, so only the kernel's own check detects that piece 1 overruns it.
    expect(() => tf.engine().runKernel(tf.SplitV, { x }, { numOrSizeSplits: [2, 3, -2], axis: 0 })).toThrow(
      'SplitV: invalid sizes [2,3,-2]: piece 1 of size 3 at offset 2 exceeds axis 0 of length 3',
    );
    expect(liveBuffers()).toBe(buffers);
    x.dispose();
  });
});

describe('Unpack replacement on wasm', () => {
  const shapes: number[][] = [[4], [3, 1], [2, 3, 4], [2, 1, 3, 2], [1, 2, 1, 2, 3]];
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    for (const [index, shape] of shapes.entries()) {
      for (let axis = -1; axis < shape.length; axis++) {
        it(`matches cpu: ${dtype} [${shape}] unstacked on axis ${axis}`, async () => {
          await expectWasmMatchesCpu(() => tf.unstack(input(shape, dtype, index + 20), axis), 0);
        });
      }
    }
  }

  it('unstacks hand-picked columns', async () => {
    const columns = await runOn('wasm', () => tf.unstack(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), 1));
    expect(columns.map((column) => column.values)).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    expect(columns.map((column) => column.shape)).toEqual([[2], [2], [2]]);
  });
});

type Masks = Partial<Record<'begin' | 'end' | 'ellipsis' | 'newAxis' | 'shrink', number>>;

/** [shape, begin, end, strides, masks]: unit-stride cuts, which the replacement copies itself. */
const UNIT_STRIDED: [number[], number[], number[], number[], Masks][] = [
  [[6, 4], [2], [5], [1], {}],
  [[6, 4], [1, 1], [4, 3], [1, 1], {}],
  [[6, 4], [3, 0], [3, 4], [1, 1], { shrink: 1 }],
  [[3, 4, 5], [1, 0, 2], [2, 0, 4], [1, 1, 1], { end: 2 }],
  [[3, 4, 5], [0, 2], [0, 3], [1, 1], { begin: 1, end: 1, newAxis: 1 }],
  [[3, 4, 5], [0, 1], [0, 3], [1, 1], { ellipsis: 1 }],
  [[6, 4], [0], [0], [1], { begin: 1, end: 1 }],
];

/**
 * Other strides: float32 goes to the stock kernel, int32 and bool to the replacement's element copy
 * (the stock kernel returns the int32 bits as float32 values there).
 */
const OTHER_STRIDED: [number[], number[], number[], number[], Masks][] = [
  [[6, 4], [5, 3], [0, 0], [-2, -1], {}],
  [[6, 4], [0, 1], [6, 4], [2, 2], {}],
  [[5, 3, 4], [4, 0, 3], [0, 3, 0], [-1, 2, -3], { end: 4 }],
  [[2, 7, 3], [0, 1], [0, 7], [1, 3], { begin: 1, end: 1, shrink: 0 }],
  [[2, 7, 3], [1, 6, 2], [0, 0, 0], [1, -4, 1], { end: 1, shrink: 1 }],
  [[7], [1], [2], [3], {}],
];

describe('StridedSlice replacement on wasm', () => {
  const cases = [
    ...UNIT_STRIDED.flatMap((entry) => (['float32', 'int32'] as const).map((dtype) => [dtype, entry] as const)),
    ...OTHER_STRIDED.flatMap((entry) => (['float32', 'int32', 'bool'] as const).map((dtype) => [dtype, entry] as const)),
  ];
  for (const [index, [dtype, [shape, begin, end, strides, masks]]] of cases.entries()) {
    it(`matches cpu: ${dtype} [${shape}] [${begin}]:[${end}]:[${strides}] ${JSON.stringify(masks)}`, async () => {
      await expectWasmMatchesCpu(
        () =>
          tf.stridedSlice(
            input(shape, dtype, index + 40),
            begin,
            end,
            strides,
            masks.begin ?? 0,
            masks.end ?? 0,
            masks.ellipsis ?? 0,
            masks.newAxis ?? 0,
            masks.shrink ?? 0,
          ),
        0,
      );
    });
  }

  it('copies int32 with a stride of 2 by hand', async () => {
    const [rows] = await runOn('wasm', () => tf.stridedSlice(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], 'int32'), [0, 0], [4, 2], [2, 1]));
    expect(rows).toEqual({ shape: [2, 2], dtype: 'int32', values: [1, 2, 5, 6] });
  });

  it('returns an empty slice when begin lies past end', async () => {
    // The cpu backend rejects this case (a negative slice size), so the expected value is written out.
    const [empty] = await runOn('wasm', () => tf.stridedSlice(input([6, 4], 'int32', 60), [4], [2], [1]));
    expect(empty).toEqual({ shape: [0, 4], dtype: 'int32', values: [] });
  });
});

describe('gradients through the slicing kernels on wasm', () => {
  const x = (): tf.Tensor => tf.tensor(values(60, 31), [3, 4, 5]);
  const weights = (shape: number[], seed: number): tf.Tensor => tf.tensor(values(shape.reduce((p, q) => p * q, 1), seed), shape);

  it('of tf.slice matches cpu', async () => {
    await expectWasmMatchesCpu(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, [1, 1, 0], [2, -1, 3]), weights([2, 3, 3], 32))))(x()));
  });

  it('of tf.split with uneven pieces matches cpu', async () => {
    await expectWasmMatchesCpu(() =>
      tf.grad((t: tf.Tensor) => {
        const [a, b, c] = tf.split(t, [1, 3, 1], 2);
        return tf.add(tf.add(tf.sum(tf.mul(a, weights([3, 4, 1], 33))), tf.sum(tf.square(b))), tf.sum(tf.mul(c, 3)));
      })(x()),
    );
  });

  for (const axis of [0, 1, 2]) {
    it(`of tf.unstack on axis ${axis} matches cpu`, async () => {
      await expectWasmMatchesCpu(() =>
        tf.grad((t: tf.Tensor) => {
          const parts = tf.unstack(t, axis);
          return tf.addN(parts.map((part, i) => tf.sum(tf.mul(part, i + 1))));
        })(x()),
      );
    });
  }
});

describe('slicing kernels under the stock switch', () => {
  afterEach(async () => {
    await initBackend('wasm', { stockKernels: false });
  });

  it('are replaced by default and restored by the stock switch', async () => {
    const names = [tf.Slice, tf.SplitV, tf.Unpack, tf.StridedSlice];
    await initBackend('wasm', { stockKernels: true });
    const stock = names.map((name) => tf.getKernel(name, 'wasm'));
    await initBackend('wasm', { stockKernels: false });
    names.forEach((name, i) => expect(tf.getKernel(name, 'wasm'), name).not.toBe(stock[i]));
    await initBackend('wasm', { stockKernels: true });
    names.forEach((name, i) => expect(tf.getKernel(name, 'wasm'), name).toBe(stock[i]));
  });

  it('stock kernels compute the same values', async () => {
    const build = (): tf.Tensor[] => {
      const t = input([3, 4, 5], 'float32', 50);
      const [a, b] = tf.split(t, [1, 3], 1);
      const gradient = tf.grad((u: tf.Tensor) => tf.sum(tf.square(tf.slice(u, [0, 1, 2], [2, 2, -1]))))(t);
      return [tf.slice(t, [1, 0, 1], [2, 4, 3]), a, b, ...tf.unstack(t, 2), gradient];
    };
    const replaced = await runOn('wasm', build, { stockKernels: false });
    const stock = await runOn('wasm', build, { stockKernels: true });
    const reference = await runOn('cpu', build);
    expect(stock).toEqual(reference);
    expect(replaced).toEqual(reference);
  });
});

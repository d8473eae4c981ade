import { afterAll, describe, expect, it } from 'vitest';
import { initBackend, registerWasmKernels, tf, wasmKernelState, type WasmKernelOptions } from '../src/index.js';
import { expectClose, expectWasmMatchesCpu, runOn, values } from './compare.js';

/** One product: operand shapes (as stored, i.e. already transposed when the flag is set) and flags. */
type Case = [string, number[], number[], boolean, boolean];

const CASES: Case[] = [
  ['plain 2-D, non-square', [5, 7], [7, 3], false, false],
  ['transposeA', [7, 5], [7, 3], true, false],
  ['transposeB', [5, 7], [3, 7], false, true],
  ['both transposed', [7, 5], [3, 7], true, true],
  ['a single row', [1, 6], [6, 4], false, false],
  ['a single row, transposeB', [1, 6], [4, 6], false, true],
  ['a single column out', [4, 6], [6, 1], false, false],
  ['equal batches', [3, 4, 5], [3, 5, 2], false, false],
  ['equal batches, transposeA', [3, 5, 4], [3, 5, 2], true, false],
  ['equal batches, both transposed', [3, 5, 4], [3, 2, 5], true, true],
  ['a batched, b broadcast (folded into rows)', [3, 4, 5], [1, 5, 2], false, false],
  ['a batched, b rank 2', [2, 3, 4, 5], [5, 6], false, false],
  ['a batched and transposed, b broadcast', [3, 5, 4], [5, 2], true, false],
  ['a broadcast, b batched', [4, 5], [3, 5, 2], false, false],
  ['both broadcast across different axes', [2, 1, 3, 4], [1, 3, 4, 2], false, false],
  ['both broadcast, transposeB', [2, 1, 3, 4], [3, 2, 4], false, true],
  // Above the small-product size (m * k * n > 8192), so these run one XNNPACK product per entry.
  ['equal batches, per-entry products', [3, 24, 20], [3, 20, 18], false, false],
  ['equal batches, per-entry, transposeA', [3, 20, 24], [3, 20, 18], true, false],
  // C^T = op(B)^T op(A)^T copies fewer values here than transposing the large operand.
  ['transposeA with a narrow b (computes C^T)', [64, 40], [64, 3], true, false],
  ['batched transposeB with a short a (computes C^T)', [2, 4, 64], [2, 200, 64], false, true],
];

const stockSwitch = process.env.MOEBENCH_STOCK_KERNELS;

describe('BatchMatMul replacement on wasm', () => {
  afterAll(async () => {
    await initBackend('wasm');
  });

  it('switches between stock and replacement', async () => {
    delete process.env.MOEBENCH_STOCK_KERNELS;
    const replaced = await initBackend('wasm');
    expect(replaced.replacementKernels).toBe(true);
    const replacement = tf.getKernel('BatchMatMul', 'wasm');

    const stock = await initBackend('wasm', { stockKernels: true });
    expect(stock.replacementKernels).toBe(false);
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(replacement);

    process.env.MOEBENCH_STOCK_KERNELS = '1';
    expect(registerWasmKernels()).toBe(false);
    expect(registerWasmKernels({ stockKernels: false })).toBe(true);
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(replacement);
    if (stockSwitch === undefined) delete process.env.MOEBENCH_STOCK_KERNELS;
    else process.env.MOEBENCH_STOCK_KERNELS = stockSwitch;
  });

  it('matches a hand-computed product', async () => {
    const [out] = await runOn('wasm', () =>
      tf.matMul(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), tf.tensor2d([1, 0, 1, 1], [2, 2]), false, true),
    );
    // b^T = [[1, 1], [0, 1]]: row [x, y] -> [x, x + y].
    expect(out.values).toEqual([1, 3, 3, 7, 5, 11, 7, 15]);
  });

  it('rejects mismatched inner dimensions', async () => {
    await initBackend('wasm');
    const a = tf.ones([2, 3]);
    const b = tf.ones([4, 5]);
    expect(() => tf.matMul(a, b)).toThrow(/3.*4|inner/);
    tf.dispose([a, b]);
  });
});

const nativeAvailable = (await initBackend('wasm')) && wasmKernelState().nativeStatus.available;

/** The two replacement sets: XNNPACK through the wasm kernels, and the native OpenBLAS addon. */
const KERNEL_SETS: [string, WasmKernelOptions, boolean][] = [
  ['wasm kernels', { stockKernels: false, nativeKernels: false }, true],
  // Runs where the addon was built at install (a C compiler and OpenBLAS were present).
  ['native kernels', { stockKernels: false, nativeKernels: true }, nativeAvailable],
];

for (const [label, kernels, available] of KERNEL_SETS) {
  describe.runIf(available)(`BatchMatMul and _FusedMatMul with ${label}`, () => {
    it('registers the requested kernel set', async () => {
      const info = await initBackend('wasm', kernels);
      expect(info.nativeKernels).toBe(kernels.nativeKernels);
    });

    // The reference broadcasts the batch dimensions explicitly with tf.broadcastTo: tfjs's own cpu and
    // stock wasm kernels give wrong values when a and b are broadcast along different axes.
    for (const [name, shapeA, shapeB, transposeA, transposeB] of CASES) {
      it(`matches broadcast cpu reference: ${name}`, async () => {
        const build = (explicit: boolean) => () => {
          const a = tf.tensor(values(shapeA.reduce((x, y) => x * y), 1), shapeA);
          const b = tf.tensor(values(shapeB.reduce((x, y) => x * y), 2), shapeB);
          const outer = tf.broadcast_util.assertAndGetBroadcastShape(shapeA.slice(0, -2), shapeB.slice(0, -2));
          const expand = (x: tf.Tensor) => (explicit ? tf.broadcastTo(x, [...outer, ...x.shape.slice(-2)]) : x);
          const multiply = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(expand(x), expand(y), transposeA, transposeB);
          const product = multiply(a, b);
          const weights = tf.tensor(values(product.size, 3), product.shape);
          return [product, ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(multiply(x, y), weights)))([a, b])];
        };
        const reference = await runOn('cpu', build(true));
        await initBackend('wasm', kernels);
        const backend = tf.backend() as unknown as { numDataIds(): number };
        const dataIdsBefore = backend.numDataIds();
        const actual = await runOn('wasm', build(false), kernels);
        expectClose(actual, reference, 1e-5);
        // The kernel's own temporaries (transposed copies, batch slices) are all freed.
        expect(backend.numDataIds()).toBe(dataIdsBefore);
        expect(actual[1].shape).toEqual(shapeA);
        expect(actual[2].shape).toEqual(shapeB);
      });
    }

    it('matches stock on a large product', async () => {
      const build = () =>
        tf.matMul(tf.tensor(values(4 * 64 * 96, 4), [4, 64, 96]), tf.tensor(values(4 * 80 * 64, 5), [4, 80, 64]), true, true);
      const stock = await runOn('wasm', build, { stockKernels: true });
      const replaced = await runOn('wasm', build, { ...kernels, stockKernels: false });
      expectClose(replaced, stock, 1e-5);
      expect(replaced[0].shape).toEqual([4, 96, 80]);
    });

    it('matches cpu on a large transposed product', async () => {
      const build = () => {
        const a = tf.tensor(values(256 * 512, 9), [256, 512]);
        const b = tf.tensor(values(384 * 512, 10), [384, 512]);
        const weights = tf.tensor(values(256 * 384, 11), [256, 384]);
        const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), weights));
        return [tf.matMul(a, b, false, true), ...tf.grads(loss)([a, b])];
      };
      // Sums of 512 products round differently in BLAS, XNNPACK and JavaScript: 1e-4 relative.
      await expectWasmMatchesCpu(build, 1e-4, kernels);
    });

    // Products large enough for the native pool to split them over its threads: by rows when m >= n
    // (m = 1000 is no multiple of the 16-row unit), by columns when n > m, and by batch entries
    // when the batch (3) does not divide evenly among two threads.
    const SPLIT_CASES: [string, number[], number[], boolean, boolean][] = [
      ['row split, m not a multiple of 16', [1000, 70], [70, 90], false, false],
      ['row split of a transposed A', [70, 1000], [70, 90], true, false],
      ['column split, n > m, transposed B', [40, 96], [1030, 96], false, true],
      ['odd batch of 3 wide entries', [3, 200, 64], [3, 64, 300], false, false],
      ['batch of 5 sharing B', [5, 130, 64], [64, 120], false, false],
    ];
    for (const [name, shapeA, shapeB, transposeA, transposeB] of SPLIT_CASES) {
      it(`matches cpu on a split product: ${name}`, async () => {
        await expectWasmMatchesCpu(
          () =>
            tf.matMul(
              tf.tensor(values(shapeA.reduce((x, y) => x * y), 12), shapeA),
              tf.tensor(values(shapeB.reduce((x, y) => x * y), 13), shapeB),
              transposeA,
              transposeB,
            ),
          1e-4,
          kernels,
        );
      });
    }

    it('matches the cpu kernel directly', async () => {
      await expectWasmMatchesCpu(
        () => tf.matMul(tf.tensor(values(3 * 5 * 4, 6), [3, 5, 4]), tf.tensor(values(2 * 5, 7), [2, 5]), true, true),
        1e-5,
        kernels,
      );
    });

    type FusedCase = [string, number[], number[], boolean, boolean, tf.fused.Activation];
    const FUSED_CASES: FusedCase[] = [
      ['plain with bias and relu', [6, 4], [4, 5], false, false, 'relu'],
      ['transposeA with bias, linear', [4, 6], [4, 5], true, false, 'linear'],
      ['transposeB with bias and sigmoid', [6, 4], [5, 4], false, true, 'sigmoid'],
      ['batched a, shared b, elu', [3, 6, 4], [4, 5], false, false, 'elu'],
      ['equal batches, both transposed, relu6', [2, 4, 6], [2, 5, 4], true, true, 'relu6'],
      ['batched, leakyrelu', [2, 6, 4], [2, 4, 5], false, false, 'leakyrelu'],
      ['batched, prelu with per-column weights', [2, 6, 4], [2, 4, 5], false, false, 'prelu'],
    ];

    for (const [name, shapeA, shapeB, transposeA, transposeB, activation] of FUSED_CASES) {
      it(`matches cpu: ${name}`, async () => {
        const build = () => {
          const a = tf.tensor(values(shapeA.reduce((x, y) => x * y), 1), shapeA);
          const b = tf.tensor(values(shapeB.reduce((x, y) => x * y), 2), shapeB);
          const bias = tf.tensor1d(values(5, 3));
          const preluActivationWeights = activation === 'prelu' ? tf.tensor1d(values(5, 4)) : undefined;
          const multiply = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.fused.matMul({ a: x, b: y, transposeA, transposeB, bias: z, activation, preluActivationWeights, leakyreluAlpha: 0.1 });
          const product = multiply(a, b, bias);
          // tfjs differentiates the fused product only for linear and relu activations.
          if (activation !== 'linear' && activation !== 'relu') return [product];
          const weights = tf.tensor(values(product.size, 5), product.shape);
          return [product, ...tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(multiply(x, y, z), weights)))([a, b, bias])];
        };
        await initBackend('wasm', kernels);
        const backend = tf.backend() as unknown as { numDataIds(): number };
        const dataIdsBefore = backend.numDataIds();
        await expectWasmMatchesCpu(build, 1e-5, kernels);
        expect(backend.numDataIds()).toBe(dataIdsBefore);
      });
    }
  });
}

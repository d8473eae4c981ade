import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  NATIVE_KERNELS,
  SOFTMAX_CROSS_ENTROPY_KERNEL,
  SOFTMAX_KERNEL,
  describeBackend,
  hasKernel,
  initBackend,
  nativeCustomKernels,
  tf,
  wasmKernelState,
} from '../src/index.js';
import { expectClose, runOn } from './compare.js';

const ENV_NAME = 'MOEBENCH_FUSED_KERNELS';
const savedEnv = process.env[ENV_NAME];

/** Options that turn the native matrix products on, whatever MOEBENCH_NATIVE_KERNELS is set to. */
const NATIVE = { stockKernels: false, nativeKernels: true } as const;

// Runs where the addon was built at install (a C compiler and OpenBLAS were present), as in CI.
delete process.env[ENV_NAME];
const nativeAvailable = (await initBackend('wasm', NATIVE)) && wasmKernelState().nativeStatus.available;

function restoreEnv(): void {
  if (savedEnv === undefined) delete process.env[ENV_NAME];
  else process.env[ENV_NAME] = savedEnv;
}

/** Names of moebench's fused kernels registered on wasm now. */
function registeredFused(): string[] {
  return nativeCustomKernels().filter((name) => tf.getKernel(name, 'wasm') !== undefined);
}

/** Asserts that the registered kernels, the kernel state and describeBackend all match `fused`. */
async function expectFused(fused: boolean): Promise<void> {
  expect(wasmKernelState().fused).toBe(fused);
  expect(registeredFused()).toEqual(fused ? nativeCustomKernels() : []);
  for (const name of nativeCustomKernels()) expect(hasKernel(name), name).toBe(fused);
  const native = (await describeBackend()).wasm!.nativeKernels;
  expect(native.fusedActive).toBe(fused);
  expect(native.kernels).toEqual(fused ? [...NATIVE_KERNELS, ...nativeCustomKernels()] : [...NATIVE_KERNELS]);
}

/** Asserts the matrix products run through the native kernels. */
async function expectNativeMatrixProducts(): Promise<void> {
  expect(wasmKernelState().native).toBe(true);
  expect((await describeBackend()).wasm!.nativeKernels.active).toBe(true);
}

/**
 * Runs a small step of the work the fused kernels take over, written as the ops write it: the
 * fused kernel when `hasKernel` finds it, else the composite. Returns the softmax of x w, the
 * cross-entropy of each row, and the gradients for x and w of a weighted sum of the softmax (which
 * runs the fused softmax's registered gradient).
 */
function step(): tf.Tensor[] {
  const rows = 37;
  const width = 19;
  const vocab = 45;
  const x = tf.tensor2d(Array.from({ length: rows * width }, (_, i) => Math.sin(i * 0.37) * 2), [rows, width]);
  const w = tf.tensor2d(Array.from({ length: width * vocab }, (_, i) => Math.cos(i * 0.11) * 0.5), [width, vocab]);
  const weights = tf.tensor2d(Array.from({ length: rows * vocab }, (_, i) => ((i * 13) % 7) - 3), [rows, vocab]);
  const labels = tf.tensor1d(Array.from({ length: rows }, (_, i) => (i * 7) % vocab), 'int32');
  const softmax = (logits: tf.Tensor): tf.Tensor =>
    hasKernel(SOFTMAX_KERNEL) ? (tf.engine().runKernel(SOFTMAX_KERNEL, { x: logits }) as tf.Tensor) : tf.softmax(logits);
  const crossEntropy = (logits: tf.Tensor): tf.Tensor => {
    if (hasKernel(SOFTMAX_CROSS_ENTROPY_KERNEL)) {
      return (tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_KERNEL, { logits, labels }) as tf.Tensor[])[0];
    }
    return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(labels, vocab)), -1));
  };
  const logits = tf.matMul(x, w);
  const { grads } = tf.valueAndGrads((input: tf.Tensor, matrix: tf.Tensor) => tf.sum(tf.mul(softmax(tf.matMul(input, matrix)), weights)) as tf.Scalar)([x, w]);
  return [softmax(logits), crossEntropy(logits), ...grads];
}

afterEach(restoreEnv);

afterAll(async () => {
  restoreEnv();
  await initBackend('wasm');
});

describe.runIf(nativeAvailable)('fused kernel switch', () => {
  it('registers the fused kernels by default', async () => {
    await initBackend('wasm', NATIVE);
    await expectNativeMatrixProducts();
    await expectFused(true);
    expect(nativeCustomKernels()).toEqual(expect.arrayContaining([SOFTMAX_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL, 'MoebenchAdamW']));
  });

  it('fusedKernels: false keeps native matrix products', async () => {
    await initBackend('wasm', NATIVE);
    const matMul = tf.getKernel(tf.BatchMatMul, 'wasm');
    const fusedMatMul = tf.getKernel(tf._FusedMatMul, 'wasm');
    await initBackend('wasm', { ...NATIVE, fusedKernels: false });
    await expectNativeMatrixProducts();
    await expectFused(false);
    // The very same native matrix-product configs stay registered.
    expect(tf.getKernel(tf.BatchMatMul, 'wasm')).toBe(matMul);
    expect(tf.getKernel(tf._FusedMatMul, 'wasm')).toBe(fusedMatMul);
  });

  it('fusedKernels: true registers them again', async () => {
    await initBackend('wasm', { ...NATIVE, fusedKernels: false });
    await expectFused(false);
    await initBackend('wasm', { ...NATIVE, fusedKernels: true });
    await expectNativeMatrixProducts();
    await expectFused(true);
  });

  it('MOEBENCH_FUSED_KERNELS=0 turns them off', async () => {
    process.env[ENV_NAME] = '0';
    await initBackend('wasm', NATIVE);
    await expectNativeMatrixProducts();
    await expectFused(false);
  });

  it('MOEBENCH_FUSED_KERNELS=1 or unset keeps them on', async () => {
    await initBackend('wasm', { ...NATIVE, fusedKernels: false });
    process.env[ENV_NAME] = '1';
    await initBackend('wasm', NATIVE);
    await expectFused(true);
    await initBackend('wasm', { ...NATIVE, fusedKernels: false });
    delete process.env[ENV_NAME];
    await initBackend('wasm', NATIVE);
    await expectFused(true);
  });

  it('the option overrides the environment variable', async () => {
    process.env[ENV_NAME] = '0';
    await initBackend('wasm', { ...NATIVE, fusedKernels: true });
    await expectFused(true);
    process.env[ENV_NAME] = '1';
    await initBackend('wasm', { ...NATIVE, fusedKernels: false });
    await expectFused(false);
  });

  it('gives the same values and gradients with and without fused kernels', async () => {
    const fused = await runOn('wasm', () => {
      expect(hasKernel(SOFTMAX_KERNEL)).toBe(true);
      return step();
    }, { ...NATIVE, fusedKernels: true });
    const composite = await runOn('wasm', () => {
      expect(hasKernel(SOFTMAX_KERNEL)).toBe(false);
      return step();
    }, { ...NATIVE, fusedKernels: false });
    const reference = await runOn('cpu', step);
    expect(fused.map((readout) => readout.shape)).toEqual([[37, 45], [37], [37, 19], [19, 45]]);
    expectClose(fused, composite, 1e-5);
    expectClose(composite, reference, 1e-5);
  });
});

describe('fused kernel switch without native matrix products', () => {
  it('registers no fused kernel when the native kernels are off', async () => {
    await initBackend('wasm', { stockKernels: false, nativeKernels: false, fusedKernels: true });
    expect(wasmKernelState().native).toBe(false);
    await expectFused(false);
  });

  it('registers no fused kernel with the stock kernels', async () => {
    await initBackend('wasm', { stockKernels: true, nativeKernels: true, fusedKernels: true });
    expect(wasmKernelState().replacements).toBe(false);
    expect(wasmKernelState().fused).toBe(false);
    expect(registeredFused()).toEqual([]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { loadAddon } from '../src/addon.js';
import { calls } from '../src/mat_mul.js';
import {
  nativeKernelInfo,
  nativeKernelsActive,
  planGemm,
  registerNativeKernels,
  THREADS_VARIABLE,
  unregisterNativeKernels,
} from '../src/index.js';

const load = loadAddon();
const built = load.ok;
const status = load.ok ? 'addon built' : `skipped because ${load.reason}`;

/** Values of one product and of its gradients with respect to every input, for sum(y * upstream). */
interface Outcome {
  y: Float32Array;
  shape: number[];
  grads: Float32Array[];
}

/** A matMul (or fused matMul) case: operand shapes and options; values come from a seeded Rng. */
interface ProductCase {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  /** Fused matMul only: bias shape, activation and leaky ReLU slope. */
  bias?: number[];
  activation?: tf.fused.Activation;
  leakyreluAlpha?: number;
  /** Fused with prelu: the prelu weights' shape. */
  prelu?: number[];
  /** Compute the gradients too (fused gradients exist for linear and relu only). */
  gradients?: boolean;
  /**
   * The broadcast batch shape, for cases the cpu backend gets wrong (size-1 batch dimensions on both
   * sides, tfjs 4.22): the cpu reference then broadcasts both operands to it explicitly first.
   */
  explicitBatch?: number[];
}

function sizeOf(shape: number[]): number {
  return shape.reduce((acc, dim) => acc * dim, 1);
}

/** Runs a case on the current backend: the same seeded inputs and upstream gradient on every backend. */
function run(c: ProductCase, seed: string, explicitBatch = false): Outcome {
  const rng = new Rng(seed);
  return tf.tidy(() => {
    const a = tf.tensor(rng.normalArray(sizeOf(c.a)), c.a);
    const b = tf.tensor(rng.normalArray(sizeOf(c.b)), c.b);
    const bias = c.bias === undefined ? undefined : tf.tensor(rng.normalArray(sizeOf(c.bias)), c.bias);
    const prelu = c.prelu === undefined ? undefined : tf.tensor(rng.uniformArray(sizeOf(c.prelu), 0, 0.5), c.prelu);
    const fused = c.bias !== undefined || c.activation !== undefined || c.prelu !== undefined;
    const widen = (x: tf.Tensor): tf.Tensor =>
      explicitBatch && c.explicitBatch !== undefined ? tf.broadcastTo(x, [...c.explicitBatch, ...x.shape.slice(-2)]) : x;
    const product = (x: tf.Tensor, w: tf.Tensor, beta?: tf.Tensor): tf.Tensor =>
      fused
        ? tf.fused.matMul({
            a: x,
            b: w,
            transposeA: c.transposeA ?? false,
            transposeB: c.transposeB ?? false,
            bias: beta,
            activation: c.activation ?? 'linear',
            preluActivationWeights: prelu,
            leakyreluAlpha: c.leakyreluAlpha,
          })
        : tf.matMul(widen(x), widen(w), c.transposeA ?? false, c.transposeB ?? false);
    const y = product(a, b, bias);
    const upstream = tf.tensor(new Rng(`${seed}/upstream`).normalArray(y.size), y.shape);
    const inputs = bias === undefined ? [a, b] : [a, b, bias];
    const grads =
      c.gradients === false
        ? []
        : tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(product(xs[0], xs[1], xs[2]), upstream)))(inputs);
    return { y: y.dataSync() as Float32Array, shape: y.shape, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

/** Largest |actual - expected| / (1 + |expected|). */
function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  }
  return worst;
}

/** Starts wasm with the native kernels on top (initBackend re-registers moebench's wasm kernels). */
async function startNative(): Promise<void> {
  await initBackend('wasm');
  expect(registerNativeKernels()).toBe(true);
  expect(nativeKernelsActive()).toBe(true);
}

/**
 * Runs the case on cpu, then on wasm with the native kernels, and checks values and gradients agree
 * and that the product took the expected path (native or fallback).
 */
async function expectMatchesCpu(c: ProductCase, path: 'native' | 'fallback' = 'native'): Promise<void> {
  const seed = JSON.stringify(c);
  await initBackend('cpu');
  const expected = run(c, seed, true);
  await startNative();
  const before = { ...calls };
  const actual = run(c, seed);
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelativeError(actual.y, expected.y)).toBeLessThan(1e-4);
  expect(actual.grads.length).toBe(expected.grads.length);
  actual.grads.forEach((grad, i) => expect(maxRelativeError(grad, expected.grads[i])).toBeLessThan(1e-4));
  if (path === 'native') {
    expect(calls.native).toBeGreaterThan(before.native);
    expect(calls.fallback).toBe(before.fallback);
  } else {
    expect(calls.fallback).toBeGreaterThan(before.fallback);
  }
}

describe('planGemm', () => {
  it('folds an unbatched b product into rows', () => {
    const plan = planGemm([3, 4, 5], [5, 6], false, false);
    expect(plan.outShape).toEqual([3, 4, 6]);
    expect(plan.gemmM).toBe(12);
    expect(Array.from(plan.offsetsA)).toEqual([0]);
  });

  it('repeats the offsets of a broadcast operand', () => {
    // a [2, 1, 4, 5] and b [3, 5, 6] broadcast to a batch of [2, 3].
    const plan = planGemm([2, 1, 4, 5], [3, 5, 6], false, false);
    expect(plan.outShape).toEqual([2, 3, 4, 6]);
    expect(Array.from(plan.offsetsA)).toEqual([0, 0, 0, 20, 20, 20]);
    expect(Array.from(plan.offsetsB)).toEqual([0, 30, 60, 0, 30, 60]);
  });

  it('reads m, k and n through the transpose flags', () => {
    const plan = planGemm([2, 5, 4], [2, 6, 5], true, true);
    expect([plan.m, plan.k, plan.n]).toEqual([4, 5, 6]);
    expect(Array.from(plan.offsetsA)).toEqual([0, 20]);
    expect(Array.from(plan.offsetsB)).toEqual([0, 30]);
  });

  it('names both shapes when the inner dimensions differ', () => {
    expect(() => planGemm([4, 5], [6, 7], false, false)).toThrow(
      'matMul: inner dimensions differ: a has 5 (shape [4,5], transposeA=false) and b has 6 (shape [6,7], transposeB=false)',
    );
  });
});

describe('thread count', () => {
  afterEach(() => {
    delete process.env[THREADS_VARIABLE];
  });

  it(`rejects a ${THREADS_VARIABLE} that is not a positive integer, naming the value`, () => {
    process.env[THREADS_VARIABLE] = 'two';
    expect(() => registerNativeKernels()).toThrow(`${THREADS_VARIABLE} must be a positive integer, received "two"`);
    process.env[THREADS_VARIABLE] = '0';
    expect(() => registerNativeKernels()).toThrow(/received "0"/);
  });

  it('rejects a threads option that is not a positive integer', () => {
    expect(() => registerNativeKernels({ threads: 1.5 })).toThrow('threads must be a positive integer, received 1.5');
  });
});

describe.runIf(!built)(`without the addon (${status})`, () => {
  it('registers nothing and says why', async () => {
    await initBackend('wasm');
    expect(registerNativeKernels()).toBe(false);
    const info = nativeKernelInfo();
    expect(info).toMatchObject({ available: false, registered: false, kernels: [] });
    expect(info.reason).toMatch(/not built|failed to load/);
  });
});

describe.runIf(built)(`native kernels against the cpu backend (${status})`, () => {
  it.each<[string, ProductCase]>([
    ['a 1-row product', { a: [1, 5], b: [5, 3] }],
    ['a 1-column product', { a: [7, 4], b: [4, 1] }],
    ['a non-square product', { a: [7, 3], b: [3, 11] }],
    ['transposeA', { a: [4, 6], b: [4, 9], transposeA: true }],
    ['transposeB', { a: [6, 4], b: [9, 4], transposeB: true }],
    ['both transposes', { a: [4, 6], b: [9, 4], transposeA: true, transposeB: true }],
    ['a batch of equal shapes', { a: [3, 4, 5], b: [3, 5, 2] }],
    ['a transposed batch', { a: [3, 5, 4], b: [3, 2, 5], transposeA: true, transposeB: true }],
    ['a batched a times an unbatched b (folded rows)', { a: [3, 4, 5], b: [5, 6] }],
    ['a transposed batched a times an unbatched b', { a: [3, 5, 4], b: [5, 6], transposeA: true }],
    ['an unbatched a times a batched b', { a: [4, 5], b: [3, 5, 6] }],
    ['batches broadcast along different axes', { a: [2, 1, 4, 5], b: [3, 5, 6], explicitBatch: [2, 3] }],
    ['size-1 batch dimensions on both sides', { a: [1, 3, 2, 4], b: [2, 1, 4, 3], explicitBatch: [2, 3] }],
    ['size-1 batch dimensions with transposes', { a: [1, 3, 4, 2], b: [2, 1, 3, 4], transposeA: true, transposeB: true, explicitBatch: [2, 3] }],
    ['a large product', { a: [300, 257], b: [257, 129] }],
    ['a large transposed batch', { a: [8, 128, 64], b: [8, 96, 128], transposeA: true, transposeB: true }],
  ])('BatchMatMul matches values and gradients: %s', async (_name, c) => {
    await expectMatchesCpu(c);
  });

  it.each<[string, ProductCase]>([
    ['a row bias, linear', { a: [5, 4], b: [4, 3], bias: [3] }],
    ['a scalar bias, linear', { a: [5, 4], b: [4, 3], bias: [1] }],
    ['a [1, n] bias and relu, transposed', { a: [4, 5], b: [3, 4], transposeA: true, transposeB: true, bias: [1, 3], activation: 'relu' }],
    ['a bias and relu on a batch', { a: [2, 6, 4], b: [2, 4, 3], bias: [3], activation: 'relu' }],
    ['relu without a bias', { a: [1, 8], b: [8, 5], activation: 'relu' }],
    ['a large product with bias and relu', { a: [256, 200], b: [200, 130], bias: [130], activation: 'relu' }],
  ])('_FusedMatMul matches values and gradients: %s', async (_name, c) => {
    await expectMatchesCpu(c);
  });

  it.each<[string, ProductCase]>([
    ['relu6', { a: [6, 5], b: [5, 7], bias: [7], activation: 'relu6', gradients: false }],
    ['sigmoid', { a: [6, 5], b: [5, 7], bias: [7], activation: 'sigmoid', gradients: false }],
    ['elu', { a: [6, 5], b: [5, 7], bias: [7], activation: 'elu', gradients: false }],
    ['leakyrelu with slope 0.1', { a: [6, 5], b: [5, 7], bias: [7], activation: 'leakyrelu', leakyreluAlpha: 0.1, gradients: false }],
    ['leakyrelu on a batch with its default slope', { a: [2, 6, 5], b: [5, 7], activation: 'leakyrelu', gradients: false }],
  ])('_FusedMatMul matches values with %s', async (_name, c) => {
    await expectMatchesCpu(c);
  });

  it.each<[string, ProductCase]>([
    ['prelu', { a: [6, 5], b: [5, 7], bias: [7], activation: 'prelu', prelu: [7], gradients: false }],
  ])('_FusedMatMul hands %s to the fallback kernel, with the same values', async (_name, c) => {
    await expectMatchesCpu(c, 'fallback');
  });

  it('hands int32 products to the fallback kernel (which the wasm backend rejects)', async () => {
    await startNative();
    const before = calls.fallback;
    const a = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    expect(() => tf.matMul(a, a)).toThrow(/non-float32/);
    expect(calls.fallback).toBe(before + 1);
    a.dispose();
  });

  it('computes a hand-checked product with both transposes', async () => {
    await startNative();
    // a^T = [[1, 3], [2, 4]], b^T = [[5, 7], [6, 8]]: a^T b^T = [[23, 31], [34, 46]].
    const product = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]), true, true).arraySync());
    expect(product).toEqual([
      [23, 31],
      [34, 46],
    ]);
  });

  it('leaves no tensors or heap bytes behind over repeated training products', async () => {
    await startNative();
    const rng = new Rng('leaks');
    const x = rng.normalTensor([16, 8]);
    const w = rng.normalTensor([8, 4]);
    const bias = rng.normalTensor([4]);
    const step = () =>
      tf.tidy(() => {
        const loss = (weights: tf.Tensor) => tf.sum(tf.fused.matMul({ a: x, b: weights as tf.Tensor2D, bias, activation: 'relu' }));
        tf.grad(loss)(w).dataSync();
      });
    step();
    const before = tf.memory();
    for (let i = 0; i < 5; i++) step();
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    tf.dispose([x, w, bias]);
  });

  it('puts the kernels it replaced back on unregister, and re-registers over swapped ones', async () => {
    await initBackend('wasm');
    const replaced = tf.getKernel(tf.BatchMatMul, 'wasm');
    expect(registerNativeKernels()).toBe(true);
    expect(tf.getKernel(tf.BatchMatMul, 'wasm')).not.toBe(replaced);
    expect(unregisterNativeKernels()).toBe(true);
    expect(tf.getKernel(tf.BatchMatMul, 'wasm')).toBe(replaced);
    expect(nativeKernelsActive()).toBe(false);
    expect(unregisterNativeKernels()).toBe(false);
    expect(registerNativeKernels()).toBe(true);
    // initBackend('wasm') puts moebench's wasm kernels back; registering again takes over from them.
    await initBackend('wasm');
    expect(nativeKernelsActive()).toBe(false);
    expect(registerNativeKernels()).toBe(true);
    expect(nativeKernelsActive()).toBe(true);
  });

  it(`describes the library, the kernels and the threads set by ${THREADS_VARIABLE}`, async () => {
    await initBackend('wasm');
    process.env[THREADS_VARIABLE] = '1';
    try {
      expect(registerNativeKernels()).toBe(true);
    } finally {
      delete process.env[THREADS_VARIABLE];
    }
    const info = nativeKernelInfo();
    expect(info).toMatchObject({ available: true, registered: true, threads: 1, threadsFrom: THREADS_VARIABLE });
    expect(info.kernels).toEqual(['BatchMatMul', '_FusedMatMul']);
    expect(info.library).toMatch(/OpenBLAS/);
    registerNativeKernels({ threads: 2 });
    expect(nativeKernelInfo()).toMatchObject({ threads: 2, threadsFrom: 'option' });
  });
});

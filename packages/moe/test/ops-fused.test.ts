import { afterAll, describe, expect, it } from 'vitest';
import {
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  LAYER_NORM_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
  hasKernel,
  initBackend,
  tf,
  wasmKernelState,
  type WasmKernelOptions,
} from '@moebench/backend';
import { gelu, groupedLayerNorm, layerNorm } from '../src/index.js';
// The seeded input generator of the backend's kernel tests, shared instead of copied.
import { values as noise } from '../../backend/test/compare.js';

const FUSED_KERNELS = [GELU_KERNEL, GELU_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL];

/** Where an op runs: the cpu reference, or wasm with or without the native kernels. */
type Setting = { backend: 'cpu' | 'wasm'; options?: WasmKernelOptions };
const CPU: Setting = { backend: 'cpu' };
const NATIVE: Setting = { backend: 'wasm', options: { stockKernels: false, nativeKernels: true, fusedKernels: true } };
const NO_NATIVE: Setting = { backend: 'wasm', options: { nativeKernels: false } };

const nativeAvailable = (await initBackend('wasm', NATIVE.options)) && wasmKernelState().nativeStatus.available;


const sizeOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** What one run returns: each output's shape and values, and the names of the kernels that ran. */
interface Run {
  outputs: { shape: number[]; values: number[] }[];
  kernels: Set<string>;
}

/**
 * Runs `build` (which creates its own inputs) on a setting, reads back every output, and checks that
 * the run left no tensors behind.
 */
async function runOn(setting: Setting, build: () => tf.Tensor[]): Promise<Run> {
  await initBackend(setting.backend, setting.options);
  const before = tf.memory().numTensors;
  let outputs: tf.Tensor[] = [];
  const profile = await tf.profile(() => {
    outputs = tf.tidy(build);
    return outputs;
  });
  const readouts = [];
  for (const tensor of outputs) readouts.push({ shape: tensor.shape, values: Array.from(await tensor.data()) });
  tf.dispose(outputs);
  expect(tf.memory().numTensors, `tensors left over on ${setting.backend}`).toBe(before);
  return { outputs: readouts, kernels: new Set(profile.kernels.map((kernel) => kernel.name)) };
}

/**
 * Asserts equal shapes, NaN and infinities at the same places, and finite values within `tolerance`
 * (absolute plus relative).
 */
function expectSameOutputs(actual: Run, expected: Run, tolerance: number): void {
  expect(actual.outputs.length).toBe(expected.outputs.length);
  expected.outputs.forEach((want, t) => {
    const got = actual.outputs[t];
    expect(got.shape, `shape of output ${t}`).toEqual(want.shape);
    let worst = 0;
    for (let i = 0; i < want.values.length; i++) {
      const [a, e] = [got.values[i], want.values[i]];
      if (!Number.isFinite(e)) {
        expect(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)), `output ${t}[${i}]: ${a} against ${e}`).toBe(true);
        continue;
      }
      worst = Math.max(worst, Math.abs(a - e) / (1 + Math.abs(e)));
    }
    expect(worst, `output ${t}: worst error`).toBeLessThanOrEqual(tolerance);
  });
}

/** GELU's value and its input gradient under fixed upstream weights. */
function geluCase(shape: number[], input?: Float32Array) {
  return (): tf.Tensor[] => {
    const x = tf.tensor(input ?? noise(sizeOf(shape), 1).map((v) => v * 5), shape);
    const weights = tf.tensor(noise(sizeOf(shape), 2), shape);
    return [gelu(x), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(gelu(v), weights)))(x)];
  };
}

/** layerNorm's (or, with `groups`, groupedLayerNorm's) value and the gradients of x, gamma and beta. */
function layerNormCase(xShape: number[], groups: number | null, input?: Float32Array) {
  return (): tf.Tensor[] => {
    const features = xShape[xShape.length - 1];
    const parameterShape = groups === null ? [features] : [groups, features];
    const x = tf.tensor(input ?? noise(sizeOf(xShape), 3).map((v) => v * 3 - 0.5), xShape);
    const gamma = tf.tensor(noise(sizeOf(parameterShape), 4).map((v) => v + 1.2), parameterShape);
    const beta = tf.tensor(noise(sizeOf(parameterShape), 5), parameterShape);
    const weights = tf.tensor(noise(sizeOf(xShape), 6), xShape);
    const normalize = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      groups === null
        ? layerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5)
        : groupedLayerNorm(a as tf.Tensor3D, g as tf.Tensor2D, b as tf.Tensor2D, 1e-5);
    const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(normalize(a, g, b), weights));
    return [normalize(x, gamma, beta), ...tf.grads(loss)([x, gamma, beta])];
  };
}

/** Runs a case on cpu, on wasm with the native kernels and on wasm without, and compares both with cpu. */
async function expectFusedAndCompositeMatchCpu(build: () => tf.Tensor[], fusedKernel: string, tolerance: number): Promise<void> {
  const reference = await runOn(CPU, build);
  const fused = await runOn(NATIVE, build);
  expect(fused.kernels.has(fusedKernel), `${fusedKernel} ran on wasm with the native kernels`).toBe(true);
  expectSameOutputs(fused, reference, tolerance);

  const composite = await runOn(NO_NATIVE, build);
  for (const name of FUSED_KERNELS) expect(composite.kernels.has(name), `${name} ran without the native kernels`).toBe(false);
  expectSameOutputs(composite, reference, tolerance);
}

describe.runIf(nativeAvailable)('shared ops on the fused native kernels', () => {
  afterAll(async () => {
    await initBackend('wasm');
  });

  it('fused kernels follow the nativeKernels switch', async () => {
    await initBackend('wasm', { nativeKernels: false });
    expect(FUSED_KERNELS.map(hasKernel)).toEqual([false, false, false, false]);
    await initBackend('wasm', NATIVE.options);
    expect(FUSED_KERNELS.map(hasKernel)).toEqual([true, true, true, true]);
  });

  // [1024, 264] is the Transformer's GELU at the quick suite's size; it exceeds the kernel's thread grain.
  for (const shape of [[1], [3], [1, 17], [7, 64], [1024, 264], [4, 33, 263]]) {
    it(`gelu matches cpu for [${shape.join(', ')}]`, async () => {
      await expectFusedAndCompositeMatchCpu(geluCase(shape), GELU_KERNEL, 1e-5);
    });
  }

  it('gelu propagates NaN and infinities', async () => {
    const input = new Float32Array([NaN, Infinity, -Infinity, 1e25, -1e25, 0, 2, -2, 12, -12]);
    await expectFusedAndCompositeMatchCpu(geluCase([input.length], input), GELU_KERNEL, 1e-5);
    const fused = await runOn(NATIVE, geluCase([input.length], input));
    expect(fused.outputs[0].values.slice(0, 3)).toEqual([NaN, Infinity, NaN]);
  });

  // Rank 2 and 3 inputs of layerNorm (rank 3 is flattened to rows), columns 1, 3, 17, 64 and 264,
  // and row counts that are no multiple of the kernel's 32-row gradient blocks.
  const LAYER_NORM_SHAPES = [[1, 1], [1, 3], [9, 17], [70, 64], [2, 33, 64], [1000, 264]];
  for (const shape of LAYER_NORM_SHAPES) {
    it(`layerNorm matches cpu for [${shape.join(', ')}]`, async () => {
      await expectFusedAndCompositeMatchCpu(layerNormCase(shape, null), LAYER_NORM_KERNEL, 1e-5);
    });
  }

  for (const shape of [[1, 1, 3], [3, 37, 17], [4, 256, 64]]) {
    it(`groupedLayerNorm matches cpu for [${shape.join(', ')}]`, async () => {
      await expectFusedAndCompositeMatchCpu(layerNormCase(shape, shape[0]), LAYER_NORM_KERNEL, 1e-5);
    });
  }

  it('layerNorm propagates NaN and infinities', async () => {
    const input = noise(5 * 6, 7);
    input[2] = NaN; // row 0
    input[8] = Infinity; // row 1
    input[15] = -Infinity; // row 2
    await expectFusedAndCompositeMatchCpu(layerNormCase([5, 6], null, input), LAYER_NORM_KERNEL, 1e-5);
    const fused = await runOn(NATIVE, layerNormCase([5, 6], null, input));
    const [y, dx, dgamma, dbeta] = fused.outputs.map((output) => output.values);
    expect(y.slice(0, 18).every(Number.isNaN)).toBe(true);
    expect(y.slice(18).some(Number.isNaN)).toBe(false);
    expect(dx.slice(18).some(Number.isNaN)).toBe(false);
    expect(dgamma.every(Number.isNaN)).toBe(true);
    expect(dbeta.some(Number.isNaN)).toBe(false);
  });

  it('fused ops keep the tensor count flat over steps', async () => {
    await initBackend('wasm', NATIVE.options);
    const x = tf.tensor3d(noise(2 * 24 * 17, 8), [2, 24, 17]);
    const gamma = tf.variable(tf.ones([17]) as tf.Tensor1D);
    const beta = tf.variable(tf.zeros([17]) as tf.Tensor1D);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(gelu(layerNorm(x, gamma, beta, 1e-5))) as tf.Scalar);
        return Object.values(grads);
      });
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma, beta]);
  });
});

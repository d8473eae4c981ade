import { expect } from 'vitest';
import { initBackend, tf, type WasmKernelOptions } from '../src/index.js';

/** A tensor's result read back to plain numbers. */
export interface Readout {
  shape: number[];
  dtype: string;
  values: number[];
}

/**
 * Runs `build` under tf.tidy on the given backend and reads back every tensor it returns. `build`
 * must create its inputs itself (from plain arrays), so nothing crosses backends.
 */
export async function runOn(
  backend: 'wasm' | 'cpu',
  build: () => tf.Tensor | tf.Tensor[],
  options: WasmKernelOptions = {},
): Promise<Readout[]> {
  await initBackend(backend, options);
  const before = tf.memory().numTensors;
  const result = tf.tidy(build);
  const tensors = Array.isArray(result) ? result : [result];
  const readouts: Readout[] = [];
  for (const tensor of tensors) {
    readouts.push({ shape: tensor.shape, dtype: tensor.dtype, values: Array.from(await tensor.data()) });
  }
  tf.dispose(tensors);
  expect(tf.memory().numTensors, `tensors left over on ${backend}`).toBe(before);
  return readouts;
}

/** Asserts two readouts have equal shapes and dtypes and values within `tolerance` (absolute + relative). */
export function expectClose(actual: Readout[], expected: Readout[], tolerance = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  for (let t = 0; t < expected.length; t++) {
    expect(actual[t].shape, `shape of output ${t}`).toEqual(expected[t].shape);
    expect(actual[t].dtype, `dtype of output ${t}`).toBe(expected[t].dtype);
    let worst = 0;
    let worstIndex = -1;
    for (let i = 0; i < expected[t].values.length; i++) {
      const a = actual[t].values[i];
      const e = expected[t].values[i];
      const error = Math.abs(a - e) / (1 + Math.abs(e));
      if (!(error <= worst)) {
        worst = error;
        worstIndex = i;
      }
    }
    expect(worst, `output ${t}: worst relative error at index ${worstIndex}`).toBeLessThanOrEqual(tolerance);
  }
}

/** Runs `build` on wasm and on cpu and asserts the results agree. */
export async function expectWasmMatchesCpu(
  build: () => tf.Tensor | tf.Tensor[],
  tolerance = 1e-4,
  options: WasmKernelOptions = {},
): Promise<Readout[]> {
  const reference = await runOn('cpu', build);
  const actual = await runOn('wasm', build, options);
  expectClose(actual, reference, tolerance);
  return actual;
}

/** Deterministic pseudo-random values in [-1, 1) from a small integer seed (no tf.random). */
export function values(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

/** Plain-JavaScript references the tests hold the tensor code to. */
import { expect } from 'vitest';
import { tf } from '@moebench/backend';

/** Layer norm over the last axis of rows [n][width], gamma = 1, beta = 0. */
export function layerNormRows(rows: number[][], epsilon = 1e-5): number[][] {
  return rows.map((row) => {
    const mean = row.reduce((a, v) => a + v, 0) / row.length;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
    return row.map((v) => (v - mean) / Math.sqrt(variance + epsilon));
  });
}

/**
 * Causal spatial gating on one sequence: z [T][2h] -> [T][h], with weight [T0][T0] (any T0 >= T,
 * the top-left block used, entries above the diagonal ignored) and bias [T0].
 */
export function spatialGatingReference(z: number[][], weight: number[][], bias: number[]): number[][] {
  const h = z[0].length / 2;
  const z1 = z.map((row) => row.slice(0, h));
  const z2 = layerNormRows(z.map((row) => row.slice(h)));
  return z1.map((row, t) =>
    row.map((value, c) => {
      let mixed = bias[t];
      for (let s = 0; s <= t; s++) mixed += weight[t][s] * z2[s][c];
      return value * mixed;
    }),
  );
}

/**
 * Runs `fn` in `tf.tidy` and returns its layer output, keeping every tensor in it.
 *
 * The layer outputs (`SmoeOutput`, `SparseBlockOutput`) are interfaces that also carry statistics and an
 * Int32Array, so their types lack the index signature of `tf.TensorContainer`. At runtime `tf.tidy` walks any
 * returned object and keeps each tensor it finds, so the cast only changes the static type.
 */
export function tidyOutput<T extends object>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}

/** Splits a flat array into rows of `width`. */
export function toRows(values: ArrayLike<number>, width: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += width) rows.push(Array.from(values).slice(i, i + width));
  return rows;
}

/** Largest absolute difference between two equally long flat arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/**
 * Asserts causality of `run` on one sequence of `seqLen` x `dModel` values: for every `stride`-th
 * position t from `firstCausal`, changing the inputs after t leaves the outputs up to t exactly
 * unchanged, and changes some later output.
 */
export async function expectCausal(
  run: (values: Float32Array) => tf.Tensor,
  base: Float32Array,
  seqLen: number,
  dModel: number,
  firstCausal: number,
  stride: number,
): Promise<void> {
  for (let t = firstCausal; t < seqLen - 1; t += stride) {
    const changed = base.slice();
    for (let i = (t + 1) * dModel; i < changed.length; i++) changed[i] = 0.5 - changed[i];
    const [a, b] = [run(base), run(changed)];
    const [valuesA, valuesB] = [await a.data(), await b.data()];
    expect(maxAbsDiff(valuesA.slice(0, (t + 1) * dModel), valuesB.slice(0, (t + 1) * dModel))).toBe(0);
    expect(maxAbsDiff(valuesA, valuesB)).toBeGreaterThan(1e-4);
    tf.dispose([a, b]);
  }
}

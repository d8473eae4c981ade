import { afterAll, describe, expect, it } from 'vitest';
import {
  ADAMW_KERNEL,
  SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL,
  SOFTMAX_CROSS_ENTROPY_KERNEL,
  SUM_OF_SQUARES_KERNEL,
  hasKernel,
  initBackend,
  tf,
  wasmKernelState,
  type AdamWKernelAttrs,
} from '../src/index.js';
import { loadNativeKernels } from '../src/kernels/native.js';
import type { NativeTrainFunctions } from '../src/kernels/native_train.js';
import { runOn, values, type Readout } from './compare.js';

const TRAIN_KERNELS = [ADAMW_KERNEL, SUM_OF_SQUARES_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL, SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL];

// Runs where the addon was built at install (a C compiler and OpenBLAS were present), as in CI.
/** The kernel options of every native test here, so that MOEBENCH_* switches in the environment do not apply. */
const NATIVE = { stockKernels: false, nativeKernels: true, fusedKernels: true } as const;
const nativeAvailable = (await initBackend('wasm', NATIVE)) && wasmKernelState().nativeStatus.available;

/** Runs `build` on wasm with the native kernels (see `runOn`). */
function runNative(build: () => tf.Tensor | tf.Tensor[]): Promise<Readout[]> {
  return runOn('wasm', build, NATIVE);
}
const addon = loadNativeKernels().blas as unknown as (NativeTrainFunctions & { setThreads(n: number): void; getThreads(): number }) | undefined;

const bits = new Uint32Array(1);
const floats = new Float32Array(bits.buffer);

/** Distance in float32 units in the last place between two finite floats of the same sign. */
function ulps(a: number, b: number): number {
  floats[0] = a;
  const first = bits[0];
  floats[0] = b;
  return Math.abs(first - bits[0]);
}

/**
 * Asserts that NaN and infinities sit at the same places with the same signs, and that finite
 * values differ by at most `tolerance`, absolute plus relative: |a - e| <= tolerance (1 + |e|).
 */
function expectSameValues(actual: Readout[], expected: Readout[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let t = 0; t < expected.length; t++) {
    expect(actual[t].shape, `shape of output ${t}`).toEqual(expected[t].shape);
    const a = actual[t].values;
    const e = expected[t].values;
    // One assertion per output: an expect call per element would dominate the run time.
    let firstMismatch = -1;
    for (let i = 0; i < e.length && firstMismatch < 0; i++) {
      const same = Number.isFinite(e[i]) ? Math.abs(a[i] - e[i]) <= tolerance * (1 + Math.abs(e[i])) : Object.is(a[i], e[i]);
      if (!same) firstMismatch = i;
    }
    const detail = firstMismatch < 0 ? '' : `${a[firstMismatch]} against ${e[firstMismatch]}`;
    expect(firstMismatch, `output ${t}: first mismatch at index ${firstMismatch}: ${detail}`).toBe(-1);
  }
}

/** Copies a tensor's data as bytes, so that results compare bit for bit (NaN included) and fast. */
function bytesOf(tensor: tf.Tensor): Buffer {
  const data = tensor.dataSync() as Float32Array;
  return Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

/**
 * Runs `build` under tf.tidy and returns its outputs' bytes. The bytes leave the tidy through a
 * closure, because tidy walks every element of a returned typed array looking for tensors.
 */
function bytesUnderTidy(build: () => tf.Tensor[]): Buffer[] {
  let bytes: Buffer[] = [];
  tf.tidy(() => {
    bytes = build().map(bytesOf);
  });
  return bytes;
}

function sameBytes(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((bytes, i) => bytes.equals(b[i]));
}

/** Runs `body` with the native pool at `threads` threads, then restores the thread count. */
function withThreads<T>(threads: number, body: () => T): T {
  const before = addon!.getThreads();
  addon!.setThreads(threads);
  try {
    return body();
  } finally {
    addon!.setThreads(before);
  }
}

describe('native training kernels registration', () => {
  afterAll(async () => {
    await initBackend('wasm', NATIVE);
  });

  it('leaves the kernels out without the native kernels', async () => {
    await initBackend('wasm', { nativeKernels: false });
    for (const name of TRAIN_KERNELS) expect(hasKernel(name), name).toBe(false);
    await initBackend('cpu');
    for (const name of TRAIN_KERNELS) expect(hasKernel(name), name).toBe(false);
  });

  it.runIf(nativeAvailable)('registers the kernels with the native kernels', async () => {
    await initBackend('wasm', NATIVE);
    for (const name of TRAIN_KERNELS) expect(hasKernel(name), name).toBe(true);
  });
});

describe.runIf(nativeAvailable)('native exponential', () => {
  it('stays within 1 ulp of Math.exp over the float32 range', () => {
    const count = 400_000;
    const inputs = new Float32Array(count);
    for (let i = 0; i < count; i++) inputs[i] = -110 + (205 * i) / count;
    const outputs = Float32Array.from(inputs);
    addon!.expInPlace(outputs);
    let worst = 0;
    let worstInput = 0;
    for (let i = 0; i < count; i++) {
      const reference = Math.fround(Math.exp(inputs[i]));
      if (reference === 0 || reference === Infinity) {
        expect(outputs[i], `exp(${inputs[i]})`).toBe(reference);
        continue;
      }
      const error = ulps(outputs[i], reference);
      if (error > worst) {
        worst = error;
        worstInput = inputs[i];
      }
    }
    expect(worst, `worst at exp(${worstInput})`).toBeLessThanOrEqual(1);
  });

  it('handles infinities, NaN, zeros and the range ends', () => {
    const cases = [
      0, -0, 1e-30, -1e-30, 1, -1, 0.5, 20, -20,
      88.72283172607422, // the largest float32 with a finite e^x
      88.72283935546875, // the smallest with e^x = Infinity
      -87.33654022216797, // e^x near the smallest normal float32
      -103.27892303466797, // e^x near the smallest subnormal
      -103.97208404541016, // e^x rounds to 0
      1000, -1000, Infinity, -Infinity, NaN,
    ];
    const outputs = Float32Array.from(cases);
    addon!.expInPlace(outputs);
    cases.forEach((input, i) => {
      const reference = Math.fround(Math.exp(input));
      if (Number.isNaN(reference) || reference === 0 || !Number.isFinite(reference)) {
        expect(outputs[i], `exp(${input})`).toBe(reference);
      } else {
        expect(ulps(outputs[i], reference), `exp(${input}) = ${outputs[i]}, expected ${reference}`).toBeLessThanOrEqual(1);
      }
    });
  });

  it('is the same function as the fused kernels\' exponential, bit for bit', () => {
    const fused = addon as unknown as { expFloat(values: Float32Array): void };
    // A sweep over [-120, 100] plus random bit patterns, whose NaNs compare by bits too.
    const count = 100_003;
    const inputs = new Float32Array(count + 16);
    for (let i = 0; i < count; i++) inputs[i] = -120 + (220 * i) / count;
    const patterns = new Uint32Array(inputs.buffer, count * 4, 16);
    for (let i = 0; i < 16; i++) patterns[i] = (Math.imul(i + 1, 2654435761) ^ 0x5bd1e995) >>> 0;
    const lanes = Float32Array.from(inputs);
    const scalar = Float32Array.from(inputs);
    addon!.expInPlace(lanes);
    fused.expFloat(scalar);
    const laneBits = new Uint32Array(lanes.buffer);
    const scalarBits = new Uint32Array(scalar.buffer);
    const firstMismatch = laneBits.findIndex((value, i) => value !== scalarBits[i]);
    expect(firstMismatch, `first mismatch at exp(${inputs[firstMismatch]})`).toBe(-1);
  });
});

/** Folds the AdamW constants as `AdamW.apply` does, for step 3 with a gradient scale of 0.7. */
function foldedConstants(decays: number[]): AdamWKernelAttrs {
  const [beta1, beta2, epsilon, learningRate, weightDecay, step, scale] = [0.9, 0.95, 1e-8, 3e-3, 0.1, 3, 0.7];
  const rootSecondCorrection = Math.sqrt(1 - beta2 ** step);
  return {
    beta1,
    gradientWeight1: (1 - beta1) * scale,
    beta2,
    gradientWeight2: (1 - beta2) * scale * scale,
    epsilon: epsilon * rootSecondCorrection,
    stepSize: (learningRate * rootSecondCorrection) / (1 - beta1 ** step),
    decayFactor: 1 - learningRate * weightDecay,
    decays,
  };
}

/** Computes the update with tfjs ops in the native kernel's order, returning new param, m and v per variable. */
function compositeAdamW(groups: tf.Tensor[][], attrs: AdamWKernelAttrs): tf.Tensor[] {
  return groups.flatMap(([param, m, v, g], i) => {
    const newM = tf.add(tf.mul(m, tf.scalar(attrs.beta1)), tf.mul(g, tf.scalar(attrs.gradientWeight1)));
    const newV = tf.add(tf.mul(v, tf.scalar(attrs.beta2)), tf.mul(tf.square(g), tf.scalar(attrs.gradientWeight2)));
    const update = tf.mul(tf.div(newM, tf.add(tf.sqrt(newV), tf.scalar(attrs.epsilon))), tf.scalar(attrs.stepSize));
    const kept = attrs.decays[i] === 1 ? tf.mul(param, tf.scalar(attrs.decayFactor)) : param;
    return [tf.sub(kept, update), newM, newV];
  });
}

function kernelAdamW(groups: tf.Tensor[][], attrs: AdamWKernelAttrs): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = {};
  groups.forEach(([param, m, v, g], i) => {
    inputs[`param${i}`] = param;
    inputs[`firstMoment${i}`] = m;
    inputs[`secondMoment${i}`] = v;
    inputs[`gradient${i}`] = g;
  });
  return tf.engine().runKernel(ADAMW_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/** Param, first moment (any sign), second moment (>= 0) and gradient of each shape, from `seed`. */
function adamwInputs(shapes: number[][], seed: number, gradient?: (i: number, values: Float32Array) => void): tf.Tensor[][] {
  return shapes.map((shape, i) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const g = values(size, seed + 4 * i + 3);
    gradient?.(i, g);
    return [
      tf.tensor(values(size, seed + 4 * i), shape),
      tf.tensor(values(size, seed + 4 * i + 1).map((x) => 0.1 * x), shape),
      tf.tensor(values(size, seed + 4 * i + 2).map((x) => 0.01 * x * x), shape),
      tf.tensor(g, shape),
    ];
  });
}

describe.runIf(nativeAvailable)('native AdamW kernel', () => {
  const CASES: [string, number[][], number[]][] = [
    ['a single element', [[1]], [1]],
    ['17 elements without decay', [[17]], [0]],
    // Above twice ADAMW_GRAIN (2^19 elements) in train.c, so two threads each take a piece.
    ['1100003 elements, split over threads', [[1_100_003]], [1]],
    ['four variables of mixed sizes in one call', [[3, 5], [17], [1], [1100, 1001]], [1, 0, 0, 1]],
  ];
  for (const [name, shapes, decays] of CASES) {
    it(`matches the composite update on cpu: ${name}`, async () => {
      const attrs = foldedConstants(decays);
      const expected = await runOn('cpu', () => compositeAdamW(adamwInputs(shapes, 11), attrs));
      const actual = await runNative(() => kernelAdamW(adamwInputs(shapes, 11), attrs));
      // The same float32 operations in the same order: equal to the last bit.
      expectSameValues(actual, expected, 0);
    });
  }

  it('turns NaN and Inf gradients into NaN parameters as the composite does', async () => {
    const poison = (i: number, g: Float32Array) => {
      if (i !== 0) return;
      g[0] = NaN;
      g[5] = Infinity;
      g[9] = -Infinity;
    };
    const attrs = foldedConstants([1, 0]);
    const expected = await runOn('cpu', () => compositeAdamW(adamwInputs([[4, 5], [6]], 5, poison), attrs));
    const actual = await runNative(() => kernelAdamW(adamwInputs([[4, 5], [6]], 5, poison), attrs));
    expectSameValues(actual, expected, 0);
    expect(actual[0].values[0]).toBeNaN();
    expect(actual[0].values[5]).toBeNaN();
    expect(actual[2].values[5]).toBe(Infinity);
  });

  it('gives the same bits for any thread count', async () => {
    await initBackend('wasm', NATIVE);
    const build = () => kernelAdamW(adamwInputs([[1_100_001], [5]], 3), foldedConstants([1, 0]));
    const results = [1, 2, 3].map((threads) => withThreads(threads, () => bytesUnderTidy(build)));
    expect(sameBytes(results[1], results[0])).toBe(true);
    expect(sameBytes(results[2], results[0])).toBe(true);
  });

  it('rejects mismatched shapes, dtypes, decays and constants', async () => {
    await initBackend('wasm', NATIVE);
    tf.tidy(() => {
      const [[param, m, v]] = adamwInputs([[2, 3]], 1);
      const attrs = foldedConstants([1]);
      const run = (inputs: tf.NamedTensorMap, override: Partial<AdamWKernelAttrs> = {}) => () =>
        tf.engine().runKernel(ADAMW_KERNEL, inputs, { ...attrs, ...override } as unknown as tf.NamedAttrMap);
      const base = { param0: param, firstMoment0: m, secondMoment0: v };
      expect(run({ ...base, gradient0: tf.ones([3, 2]) })).toThrow(/gradient0 has shape \[3,2\], expected \[2,3\]/);
      expect(run({ ...base, gradient0: tf.ones([2, 3], 'int32') })).toThrow(/gradient0 must be float32, received int32/);
      expect(run(base)).toThrow(/expected 4 inputs/);
      expect(run({ ...base, gradient0: tf.ones([2, 3]) }, { decays: [2] })).toThrow(/decays\[0\] must be 0 or 1, received 2/);
      expect(run({ ...base, gradient0: tf.ones([2, 3]) }, { stepSize: NaN })).toThrow(/stepSize must be a finite number, received NaN/);
    });
  });
});

describe.runIf(nativeAvailable)('native sum of squares kernel', () => {
  const kernelSum = (tensors: tf.Tensor[]) => {
    const inputs: tf.NamedTensorMap = {};
    tensors.forEach((tensor, i) => (inputs[`x${i}`] = tensor));
    return tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, inputs) as tf.Tensor;
  };

  /** sum(fround(x^2)) in float64 over every input, the kernel's own arithmetic in a plain loop. */
  const float64Sum = (arrays: Float32Array[]) => arrays.reduce((sum, array) => array.reduce((s, x) => s + Math.fround(x * x), sum), 0);

  const CASES: [string, number[]][] = [
    ['one element', [1]],
    ['17 elements', [17]],
    ['one block exactly', [8192]],
    // Above twice SQUARES_GRAIN (2^20 elements) in train.c, so two threads each take a piece.
    ['many tensors crossing block boundaries, split over threads', [5000, 1, 17, 8191, 2_200_003, 3]],
  ];
  for (const [name, sizes] of CASES) {
    it(`matches a float64 sum and the cpu composite: ${name}`, async () => {
      const arrays = sizes.map((size, i) => values(size, 20 + i));
      const [actual] = await runNative(() => kernelSum(arrays.map((array) => tf.tensor1d(array))));
      const [composite] = await runOn('cpu', () => tf.addN(arrays.map((array) => tf.sum(tf.square(tf.tensor1d(array))))));
      const exact = float64Sum(arrays);
      expect(actual.shape).toEqual([]);
      expect(actual.values[0]).toBe(Math.fround(exact));
      expect(Math.abs(actual.values[0] - composite.values[0]) / exact).toBeLessThan(1e-5);
    });
  }

  it('returns 0 for no inputs', async () => {
    const [actual] = await runNative(() => kernelSum([]));
    expect(actual.values).toEqual([0]);
  });

  it('propagates NaN and Inf and overflows as float32 squares do', async () => {
    const withValue = (value: number) => async () => {
      const array = values(20_000, 4);
      array[12_345] = value;
      const [actual] = await runNative(() => kernelSum([tf.tensor1d(values(33, 1)), tf.tensor1d(array)]));
      const [composite] = await runOn('cpu', () => tf.addN([tf.sum(tf.square(tf.tensor1d(values(33, 1)))), tf.sum(tf.square(tf.tensor1d(array)))]));
      return [actual.values[0], composite.values[0]];
    };
    expect(await withValue(NaN)()).toEqual([NaN, NaN]);
    expect(await withValue(-Infinity)()).toEqual([Infinity, Infinity]);
    // 2e19 squared is above the float32 maximum (3.4e38).
    expect(await withValue(2e19)()).toEqual([Infinity, Infinity]);
  });

  it('gives the same bits for any thread count', async () => {
    await initBackend('wasm', NATIVE);
    const sizes = [1_200_001, 5, 1_000_000, 9_000];
    const build = () => tf.tidy(() => kernelSum(sizes.map((size, i) => tf.tensor1d(values(size, i + 7)))).dataSync()[0]);
    const results = [1, 2, 3, 4].map((threads) => withThreads(threads, build));
    expect(new Set(results).size).toBe(1);
  });

  it('rejects int32 inputs', async () => {
    await initBackend('wasm', NATIVE);
    tf.tidy(() => {
      expect(() => kernelSum([tf.ones([3]), tf.ones([2], 'int32')])).toThrow(/x1 must be float32, received int32/);
    });
  });
});

/** Generates logits [rows, vocab] from `seed`, spread over about [-48, -26] so that the max shift matters. */
function logitValues(rows: number, vocab: number, seed: number, scale = 8): Float32Array {
  return values(rows * vocab, seed).map((x, i) => scale * x + (i % 7) - 40);
}

/** Generates labels in [0, vocab) from `seed`, with 0 and vocab - 1 in the first two rows. */
function labelValues(rows: number, vocab: number, seed: number): Int32Array {
  const labels = Int32Array.from(values(rows, seed), (x) => Math.floor(((x + 1) / 2) * vocab) % vocab);
  labels[0] = 0;
  if (rows > 1) labels[1] = vocab - 1;
  return labels;
}

/** Computes the composite loss of @moebench/train: -sum(logSoftmax(logits) * onehot(labels)) over the last axis. */
function compositeNll(logits: tf.Tensor, labels: tf.Tensor, vocab: number): tf.Tensor {
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits, -1), tf.oneHot(labels, vocab)), -1));
}

function kernelForward(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor[] {
  return tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_KERNEL, { logits, labels }) as tf.Tensor[];
}

/** Runs both kernels and returns the forward's nll and the dlogits for upstream gradient `dy`. */
function kernelLossAndGradient(logits: tf.Tensor, labels: tf.Tensor, dy: tf.Tensor): tf.Tensor[] {
  const [nll, rowMax, logSum] = kernelForward(logits, labels);
  const gradient = tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, { logits, labels, rowMax, logSum, dy }) as tf.Tensor;
  return [nll, gradient];
}

function compositeLossAndGradient(logits: tf.Tensor, labels: tf.Tensor, dy: tf.Tensor, vocab: number): tf.Tensor[] {
  const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(compositeNll(x, labels, vocab), dy)))(logits);
  return [compositeNll(logits, labels, vocab), gradient];
}

describe.runIf(nativeAvailable)('native softmax cross-entropy kernels', () => {
  const CASES: [string, number[], number][] = [
    ['two classes', [3], 2],
    ['one row', [1], 256],
    ['17 classes over a 3-D batch', [2, 3], 17],
    // Above twice SOFTMAX_GRAIN (2^17 logits) in train.c, so two threads each take a piece.
    ['1000 rows of 300 classes, split over threads', [1000], 300],
  ];
  for (const [name, rowShape, vocab] of CASES) {
    it(`matches the composite loss and gradient on cpu: ${name}`, async () => {
      const rows = rowShape.reduce((a, b) => a * b, 1);
      const build = (kernel: boolean) => () => {
        const logits = tf.tensor(logitValues(rows, vocab, 3), [...rowShape, vocab]);
        const labels = tf.tensor(labelValues(rows, vocab, 4), rowShape, 'int32');
        const dy = tf.tensor(values(rows, 5).map((x) => x + 0.25), rowShape);
        return kernel ? kernelLossAndGradient(logits, labels, dy) : compositeLossAndGradient(logits, labels, dy, vocab);
      };
      const expected = await runOn('cpu', build(false));
      const actual = await runNative(build(true));
      expectSameValues(actual, expected, 1e-6);
    });
  }

  it('gives zero loss and gradient for a vocabulary of 1', async () => {
    // tf.oneHot rejects a depth of 1, so this case has no composite reference: softmax is 1 everywhere.
    const [nll, gradient] = await runNative(() =>
      kernelLossAndGradient(tf.tensor2d([[3], [-50]]), tf.tensor1d([0, 0], 'int32'), tf.tensor1d([2, 0.5])),
    );
    expect(nll.values).toEqual([0, 0]);
    expect(gradient.values).toEqual([0, 0]);
  });

  it('returns the row maximum and the log of the shifted sum', async () => {
    const [nll, rowMax, logSum] = await runNative(() =>
      kernelForward(tf.tensor2d([[1, 2, 3], [0, 0, 0]]), tf.tensor1d([2, 0], 'int32')),
    );
    const expectedLogSum = Math.log(Math.exp(-2) + Math.exp(-1) + 1);
    expect(rowMax.values).toEqual([3, 0]);
    expect(logSum.values[0]).toBeCloseTo(expectedLogSum, 6);
    expect(logSum.values[1]).toBeCloseTo(Math.log(3), 6);
    expect(nll.values[0]).toBeCloseTo(expectedLogSum, 6);
    expect(nll.values[1]).toBeCloseTo(Math.log(3), 6);
  });

  it('propagates NaN and Inf logits and gradients as the composite does', async () => {
    const vocab = 19;
    const rows = 8;
    const build = (kernel: boolean) => () => {
      const logits = logitValues(rows, vocab, 9);
      const labels = labelValues(rows, vocab, 10);
      labels[2] = 4;
      labels[3] = 6;
      logits[0 * vocab + 3] = NaN; // a NaN logit: NaN loss and gradient
      logits[1 * vocab + 0] = Infinity; // +Inf: NaN
      logits[2 * vocab + 7] = -Infinity; // -Inf off the label: NaN loss (-Inf * 0), finite gradient
      logits[3 * vocab + 6] = -Infinity; // -Inf at the label alone: Infinity
      logits.fill(-Infinity, 4 * vocab, 5 * vocab); // every logit -Inf: NaN
      const dy = values(rows, 11);
      dy[5] = NaN; // a NaN upstream gradient: NaN row
      dy[6] = Infinity; // Inf: NaN row, since the composite multiplies it by 0
      const inputs = [tf.tensor2d(logits, [rows, vocab]), tf.tensor1d(labels, 'int32'), tf.tensor1d(dy)] as const;
      return kernel ? kernelLossAndGradient(...inputs) : compositeLossAndGradient(...inputs, vocab);
    };
    const expected = await runOn('cpu', build(false));
    const actual = await runNative(build(true));
    expectSameValues(actual, expected, 1e-6);
    expect(actual[0].values.slice(0, 5)).toEqual([NaN, NaN, NaN, Infinity, NaN]);
    expect(actual[1].values.slice(5 * vocab, 7 * vocab).every(Number.isNaN)).toBe(true);
    expect(actual[1].values.slice(2 * vocab, 3 * vocab).every(Number.isFinite)).toBe(true);
  });

  it('gives the same bits for any thread count', async () => {
    await initBackend('wasm', NATIVE);
    const build = () =>
      bytesUnderTidy(() => {
        const logits = tf.tensor2d(logitValues(1100, 257, 2), [1100, 257]);
        const labels = tf.tensor1d(labelValues(1100, 257, 3), 'int32');
        return kernelLossAndGradient(logits, labels, tf.ones([1100]));
      });
    const results = [1, 2, 3].map((threads) => withThreads(threads, build));
    expect(sameBytes(results[1], results[0])).toBe(true);
    expect(sameBytes(results[2], results[0])).toBe(true);
  });

  it('rejects labels outside the vocabulary and frees its outputs', async () => {
    await initBackend('wasm', NATIVE);
    const logits = tf.ones([3, 5]);
    const before = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes };
    for (const bad of [-1, 5]) {
      const labels = tf.tensor1d([0, bad, 4], 'int32');
      expect(() => kernelForward(logits, labels)).toThrow(`labels must be integers in [0, 5), received ${bad} at flat index 1`);
      const rowInputs = { rowMax: tf.zeros([3]), logSum: tf.zeros([3]), dy: tf.ones([3]) };
      expect(() => tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, { logits, labels, ...rowInputs })).toThrow(
        `received ${bad} at flat index 1`,
      );
      tf.dispose([labels, ...Object.values(rowInputs)]);
    }
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(tf.memory().numBytes).toBe(before.bytes);
    logits.dispose();
  });

  it('rejects mismatched label shapes and dtypes', async () => {
    await initBackend('wasm', NATIVE);
    tf.tidy(() => {
      const logits = tf.ones([2, 3, 4]);
      expect(() => kernelForward(logits, tf.zeros([2, 4], 'int32'))).toThrow(/labels have shape \[2,4\], expected \[2,3\]/);
      expect(() => kernelForward(logits, tf.zeros([2, 3]))).toThrow(/labels must be int32, received float32/);
      expect(() => kernelForward(tf.ones([2, 0]), tf.zeros([2], 'int32'))).toThrow(/must have size >= 1/);
    });
  });
});

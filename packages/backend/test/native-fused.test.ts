import { afterAll, describe, expect, it } from 'vitest';
import {
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  LAYER_NORM_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  SOFTMAX_KERNEL,
  hasKernel,
  initBackend,
  nativeCustomKernels,
  tf,
  wasmKernelState,
} from '../src/index.js';
import { loadNativeKernels } from '../src/kernels/native.js';
import { expectClose, runOn, values, type Readout } from './compare.js';

const FUSED_KERNELS = [GELU_KERNEL, GELU_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL, SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL];

/** The testing hooks of native/fused.c: exp_float and sigmoid_float applied in place. */
interface FusedHooks {
  expFloat(values: Float32Array): void;
  sigmoidFloat(values: Float32Array): void;
  setThreads(threads: number): void;
  getThreads(): number;
}

/** Options that turn the native and fused kernels on, whatever the MOEBENCH_* switches are set to. */
const NATIVE = { stockKernels: false, nativeKernels: true, fusedKernels: true } as const;

/** Runs `build` on wasm with the native kernels (see `runOn`). */
const runOnNative = (build: () => tf.Tensor | tf.Tensor[]) => runOn('wasm', build, NATIVE);

const nativeAvailable = (await initBackend('wasm', NATIVE)) && wasmKernelState().nativeStatus.available;
const hooks = loadNativeKernels().blas as unknown as FusedHooks | undefined;

const GELU_SCALE = 2 * Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** GELU as @moebench/moe's composite op computes it: x * sigmoid(GELU_SCALE x (1 + GELU_CUBIC x^2)). */
function compositeGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(tf.mul(x, tf.add(tf.mul(tf.mul(x, x), GELU_CUBIC), 1)), GELU_SCALE)));
}

/** Layer norm over the last axis with one gamma row per group (or one for all rows), by tfjs's autodiff. */
function compositeLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const inverseStd = tf.rsqrt(tf.add(tf.mean(tf.mul(centered, centered), -1, true), epsilon));
  const perGroup = (parameter: tf.Tensor) => (x.rank === 3 ? tf.expandDims(parameter, 1) : parameter);
  return tf.add(tf.mul(tf.mul(centered, inverseStd), perGroup(gamma)), perGroup(beta));
}

function fusedGelu(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
}

function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  return (tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma, beta }, { epsilon }) as tf.Tensor[])[0];
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Builds GELU's value and gradient (for an upstream gradient of fixed pseudo-random weights). */
function geluCase(gelu: (x: tf.Tensor) => tf.Tensor, shape: number[], input?: Float32Array) {
  return () => {
    const x = tf.tensor(input ?? values(size(shape), 1).map((v) => v * 6), shape);
    const weights = tf.tensor(values(size(shape), 2), shape);
    const [y, dx] = [gelu(x), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(gelu(v), weights)))(x)];
    return [y, dx];
  };
}

type LayerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number) => tf.Tensor;

/** Builds the layer norm's value and the gradients of x, gamma and beta; `groups` 0 is the row form. */
function layerNormCase(layerNorm: LayerNorm, groups: number, rows: number, columns: number, input?: Float32Array) {
  return () => {
    const xShape = groups === 0 ? [rows, columns] : [groups, rows, columns];
    const parameterShape = groups === 0 ? [columns] : [groups, columns];
    const x = tf.tensor(input ?? values(size(xShape), 3).map((v) => v * 4 + 1), xShape);
    const gamma = tf.tensor(values(size(parameterShape), 4).map((v) => v + 1.5), parameterShape);
    const beta = tf.tensor(values(size(parameterShape), 5), parameterShape);
    const weights = tf.tensor(values(size(xShape), 6), xShape);
    const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, g, b, 1e-5), weights));
    return [layerNorm(x, gamma, beta, 1e-5), ...tf.grads(loss)([x, gamma, beta])];
  };
}

/** Softmax over the last axis, of x or of x plus a bias added to each [rows, columns] slice. */
type Softmax = (x: tf.Tensor, bias?: tf.Tensor) => tf.Tensor;

const compositeSoftmax: Softmax = (x, bias) => tf.softmax(bias === undefined ? x : tf.add(x, bias));

const fusedSoftmax: Softmax = (x, bias) =>
  tf.engine().runKernel(SOFTMAX_KERNEL, bias === undefined ? { x } : { x, bias }) as tf.Tensor;

/**
 * Builds the softmax's value and the gradients of x and, when `biasValues` is given, of the bias
 * [rows, columns] (x's last two axes).
 */
function softmaxCase(softmax: Softmax, shape: number[], input?: Float32Array, biasValues?: Float32Array) {
  return () => {
    const x = tf.tensor(input ?? values(size(shape), 10).map((v) => v * 8), shape);
    const weights = tf.tensor(values(size(shape), 11), shape);
    if (biasValues === undefined) {
      return [softmax(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(softmax(a), weights)))(x)];
    }
    const bias = tf.tensor(biasValues, shape.slice(-2));
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(softmax(a, b), weights));
    return [softmax(x, bias), ...tf.grads(loss)([x, bias])];
  };
}

/** A causal attention mask [time, time]: 0 on and below the diagonal, `masked` above it. */
function causalMask(time: number, masked: number): Float32Array {
  const mask = new Float32Array(time * time);
  for (let row = 0; row < time; row++) mask.fill(masked, row * time + row + 1, (row + 1) * time);
  return mask;
}

/** Asserts that NaN, +inf and -inf sit at the same places, and that the finite values agree. */
function expectSameSpecials(actual: Readout[], expected: Readout[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let t = 0; t < expected.length; t++) {
    const nanAt = (r: Readout) => r.values.flatMap((v, i) => (Number.isNaN(v) ? [i] : []));
    const infinityAt = (r: Readout) => r.values.flatMap((v, i) => (Number.isFinite(v) || Number.isNaN(v) ? [] : [`${i}:${v}`]));
    expect(nanAt(actual[t]), `NaN positions of output ${t}`).toEqual(nanAt(expected[t]));
    expect(infinityAt(actual[t]), `infinities of output ${t}`).toEqual(infinityAt(expected[t]));
    const finite = (r: Readout): Readout => ({ ...r, values: r.values.map((v) => (Number.isFinite(v) ? v : 0)) });
    expectClose([finite(actual[t])], [finite(expected[t])], tolerance);
  }
}

/** Distance in units in the last place between a float32 value and the float32 rounding of `exact`. */
function ulpDistance(value: number, exact: number): number {
  const rounded = Math.fround(exact);
  if (Number.isNaN(value) || Number.isNaN(rounded)) return Number.isNaN(value) && Number.isNaN(rounded) ? 0 : Infinity;
  const bits = new Int32Array(new Float32Array([value, rounded]).buffer);
  // Maps the sign-magnitude bit patterns onto one monotonic integer line, with -0 and +0 equal.
  const ordered = (b: number) => (b < 0 ? -2147483648 - b : b);
  return Math.abs(ordered(bits[0]) - ordered(bits[1]));
}

/** Finds the worst ulp distance of `hook` from `reference` over `inputs`, and where it occurs. */
function worstUlps(hook: (values: Float32Array) => void, reference: (x: number) => number, inputs: Float32Array) {
  const results = inputs.slice();
  hook(results);
  let worst = 0;
  let at = NaN;
  for (let i = 0; i < inputs.length; i++) {
    const distance = ulpDistance(results[i], reference(inputs[i]));
    if (distance > worst) {
      worst = distance;
      at = inputs[i];
    }
  }
  return { worst, at };
}

/** Inputs for the exp and sigmoid sweeps: a dense grid over [low, high] and random bit patterns. */
function sweepInputs(low: number, high: number): Float32Array {
  const grid = 400_001;
  const inputs = new Float32Array(grid + 100_000);
  for (let i = 0; i < grid; i++) inputs[i] = low + ((high - low) * i) / (grid - 1);
  const bits = new Uint32Array(inputs.buffer, grid * 4, 100_000);
  const noise = values(2 * bits.length, 7);
  for (let i = 0; i < bits.length; i++) bits[i] = ((noise[2 * i] * 32768 + 32768) << 16) | (noise[2 * i + 1] * 32768 + 32768);
  return inputs;
}

const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 88.72, 88.73, -87.33, -103.27, -103.98, -104, -1e-30, 1e-30, 3.4e38, -3.4e38];

describe.runIf(nativeAvailable)('native fused kernels', () => {
  afterAll(async () => {
    await initBackend('wasm');
  });

  it('registers with the native kernels only', async () => {
    await initBackend('wasm', NATIVE);
    for (const name of FUSED_KERNELS) expect(hasKernel(name), name).toBe(true);
    expect(nativeCustomKernels()).toEqual(expect.arrayContaining(FUSED_KERNELS));

    await initBackend('wasm', { nativeKernels: false });
    for (const name of FUSED_KERNELS) expect(hasKernel(name), name).toBe(false);

    await initBackend('cpu');
    for (const name of FUSED_KERNELS) expect(hasKernel(name), name).toBe(false);
    await initBackend('wasm', NATIVE);
    expect(hasKernel(GELU_KERNEL)).toBe(true);
  });

  it('exp within 1 ulp of Math.exp over the float range', () => {
    const { worst, at } = worstUlps((v) => hooks!.expFloat(v), Math.exp, sweepInputs(-110, 90));
    expect(worst, `worst at ${at}`).toBeLessThanOrEqual(1);
  });

  it('exp keeps NaN and infinities and rounds at the range ends', () => {
    const results = new Float32Array(SPECIALS);
    hooks!.expFloat(results);
    // The kernels read float32, so the reference takes each input rounded to float32.
    SPECIALS.forEach((x, i) => expect(ulpDistance(results[i], Math.exp(Math.fround(x))), `exp(${x})`).toBeLessThanOrEqual(1));
    expect(Number.isNaN(results[0])).toBe(true);
    expect(results[1]).toBe(Infinity);
    expect(results[2]).toBe(0);
  });

  it('sigmoid within 2 ulp of the float64 formula', () => {
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
    const { worst, at } = worstUlps((v) => hooks!.sigmoidFloat(v), sigmoid, sweepInputs(-110, 110));
    expect(worst, `worst at ${at}`).toBeLessThanOrEqual(2);

    const results = new Float32Array(SPECIALS);
    hooks!.sigmoidFloat(results);
    expect(Number.isNaN(results[0])).toBe(true);
    expect([results[1], results[2], results[3], results[4]]).toEqual([1, 0, 0.5, 0.5]);
    SPECIALS.forEach((x, i) => expect(ulpDistance(results[i], sigmoid(Math.fround(x))), `sigmoid(${x})`).toBeLessThanOrEqual(2));
  });

  // 1024 x 264 and 4 x 256 x 263 exceed the element grain (16384), so they run on the pool's threads.
  for (const shape of [[1], [3], [17], [1, 264], [5, 17], [33, 64], [1024, 264], [4, 256, 263]]) {
    it(`gelu matches the composite on cpu for [${shape.join(', ')}]`, async () => {
      const reference = await runOn('cpu', geluCase(compositeGelu, shape));
      const actual = await runOnNative(geluCase(fusedGelu, shape));
      expectClose(actual, reference, 1e-5);
    });
  }

  it('gelu propagates NaN and infinities like the composite', async () => {
    const input = new Float32Array([NaN, Infinity, -Infinity, 1e20, -1e20, 0, -0, 3, -3, 1e-30, 20, -20, 9.5, -9.5]);
    const reference = await runOn('cpu', geluCase(compositeGelu, [input.length], input));
    const actual = await runOnNative(geluCase(fusedGelu, [input.length], input));
    expectSameSpecials(actual, reference, 1e-5);
    expect(Number.isNaN(actual[0].values[0])).toBe(true);
    expect(actual[0].values[1]).toBe(Infinity);
  });

  // [groups, rows, columns], with groups 0 for the row form. 1000 x 264 and 4 x 256 x 64 exceed the
  // row grain (16384 floats); 70 rows make 3 gradient blocks of 32 rows, the last one short.
  const LAYER_NORM_SHAPES: [number, number, number][] = [
    [0, 1, 1],
    [0, 1, 3],
    [0, 7, 17],
    [0, 70, 64],
    [0, 5, 264],
    [0, 1000, 264],
    [1, 3, 5],
    [3, 37, 17],
    [2, 1, 64],
    [4, 256, 64],
  ];
  for (const [groups, rows, columns] of LAYER_NORM_SHAPES) {
    const label = groups === 0 ? `[${rows}, ${columns}]` : `[${groups}, ${rows}, ${columns}] with grouped gamma`;
    it(`layer norm matches the composite on cpu for ${label}`, async () => {
      const reference = await runOn('cpu', layerNormCase(compositeLayerNorm, groups, rows, columns));
      const actual = await runOnNative(layerNormCase(fusedLayerNorm, groups, rows, columns));
      expectClose(actual, reference, 1e-5);
    });
  }

  // [64, 64, 64] is the attention's [batch * heads, time, time] at the quick suite's size and exceeds
  // the row grain. The biased cases add a causal mask to each [time, time] slice.
  const SOFTMAX_CASES: [number[], number | null][] = [
    [[1], null],
    [[3], null],
    [[5, 17], null],
    [[2, 3, 264], null],
    [[1, 1], 0],
    [[5, 17], -1e9],
    [[3, 7, 7], -Infinity],
    [[64, 64, 64], -1e9],
  ];
  for (const [shape, masked] of SOFTMAX_CASES) {
    const label = masked === null ? '' : ` with a causal mask of ${masked}`;
    it(`softmax matches tfjs's on cpu for [${shape.join(', ')}]${label}`, async () => {
      const time = shape[shape.length - 1];
      const bias = masked === null ? undefined : causalMask(time, masked).slice(0, shape[shape.length - 2] * time);
      const reference = await runOn('cpu', softmaxCase(compositeSoftmax, shape, undefined, bias));
      const actual = await runOnNative(softmaxCase(fusedSoftmax, shape, undefined, bias));
      expectClose(actual, reference, 1e-5);
    });
  }

  it('softmax propagates NaN and infinities like tfjs', async () => {
    // Rows: a NaN, +inf, -inf, all -inf, a value near the float maximum, and ordinary values.
    const input = new Float32Array([1, NaN, 2, Infinity, 0, 1, -Infinity, 3, 1, -Infinity, -Infinity, -Infinity, 3e38, 1, 2, 0.5, -0.5, 4]);
    const reference = await runOn('cpu', softmaxCase(compositeSoftmax, [6, 3], input));
    const actual = await runOnNative(softmaxCase(fusedSoftmax, [6, 3], input));
    expectSameSpecials(actual, reference, 1e-5);
    // Row 2, [-inf, 3, 1]: the -inf entry gets 0 and the others share 1.
    expect(actual[0].values[6]).toBe(0);
    expect(actual[0].values[7]).toBeCloseTo(Math.exp(3) / (Math.exp(3) + Math.exp(1)), 6);
    expect(actual[0].values.slice(3, 6).every(Number.isNaN)).toBe(true);
    expect(actual[0].values.slice(15).some(Number.isNaN)).toBe(false);
  });

  it('softmax gradient follows tfjs for a given y and dy', async () => {
    // dx = dy y - sum(dy y) y: with y = [0.25, 0.75] and dy = [1, 3], sum(dy y) = 2.5.
    const [dx] = await runOnNative(() =>
      tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y: tf.tensor2d([[0.25, 0.75]]), dy: tf.tensor2d([[1, 3]]) }) as tf.Tensor,
    );
    expect(dx.values).toEqual([0.25 - 2.5 * 0.25, 2.25 - 2.5 * 0.75]);
  });

  it('layer norm returns the per-row mean and inverse std', async () => {
    const [y, mean, inverseStd] = await runOnNative(() => {
      const x = tf.tensor2d([[1, 2, 3, 6], [-1, -1, -1, -1]]);
      return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma: tf.ones([4]), beta: tf.zeros([4]) }, { epsilon: 1e-3 }) as tf.Tensor[];
    });
    // Row 0: mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5. Row 1: mean -1, variance 0.
    expect(mean.shape).toEqual([2]);
    expect(mean.values).toEqual([3, -1]);
    expect(inverseStd.values[0]).toBeCloseTo(1 / Math.sqrt(3.5 + 1e-3), 6);
    expect(inverseStd.values[1]).toBeCloseTo(1 / Math.sqrt(1e-3), 4);
    expect(y.values.slice(4)).toEqual([0, 0, 0, 0]);
  });

  it('layer norm propagates NaN and infinities like the composite', async () => {
    const [rows, columns] = [6, 5];
    const input = values(rows * columns, 8);
    input[1] = NaN; // row 0
    input[7] = Infinity; // row 1
    input[12] = -Infinity; // row 2
    const reference = await runOn('cpu', layerNormCase(compositeLayerNorm, 0, rows, columns, input));
    const actual = await runOnNative(layerNormCase(fusedLayerNorm, 0, rows, columns, input));
    expectSameSpecials(actual, reference, 1e-5);
    expect(actual[0].values.slice(0, 15).every(Number.isNaN)).toBe(true);
    expect(actual[0].values.slice(25).some(Number.isNaN)).toBe(false);
  });

  it('layer norm gradients are bitwise equal on one and two threads', async () => {
    const build = layerNormCase(fusedLayerNorm, 0, 1000, 264);
    const grouped = layerNormCase(fusedLayerNorm, 4, 256, 64);
    const threads = hooks!.getThreads();
    try {
      hooks!.setThreads(1);
      const single = [...(await runOnNative(build)), ...(await runOnNative(grouped))];
      hooks!.setThreads(2);
      const double = [...(await runOnNative(build)), ...(await runOnNative(grouped))];
      for (let t = 0; t < single.length; t++) expect(double[t].values, `output ${t}`).toEqual(single[t].values);
    } finally {
      hooks!.setThreads(threads);
    }
  });

  it('fused kernels leave no tensors or heap buffers behind', async () => {
    await initBackend('wasm', NATIVE);
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor3d(values(2 * 40 * 17, 9), [2, 40, 17]);
    const gamma = tf.ones([2, 17]);
    const beta = tf.zeros([2, 17]);
    const mask = tf.tensor2d(causalMask(40, -1e9).slice(0, 40 * 17), [40, 17]);
    const run = () => {
      const attention = tf.grads((a: tf.Tensor, m: tf.Tensor) => tf.sum(fusedSoftmax(a, m)))([x, mask]);
      tf.dispose(attention);
      const [y, mean, inverseStd] = tf.engine().runKernel(LAYER_NORM_KERNEL, { x, gamma, beta }, { epsilon: 1e-5 }) as tf.Tensor[];
      const activated = fusedGelu(y);
      const gradients = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(fusedGelu(fusedLayerNorm(a, g, b, 1e-5))))([
        x,
        gamma,
        beta,
      ]);
      tf.dispose([y, mean, inverseStd, activated, ...gradients]);
    };
    run();
    const [tensors, dataIds] = [tf.memory().numTensors, backend.numDataIds()];
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(dataIds);
    tf.dispose([x, gamma, beta, mask]);
  });

  it('rejects invalid inputs with the field and the value', async () => {
    await initBackend('wasm', NATIVE);
    const x = tf.ones([4, 3]);
    const ints = tf.ones([4, 3], 'int32');
    const gamma = tf.ones([3]);
    const [transposed, wide, short] = [tf.ones([3, 4]), tf.ones([4]), tf.ones([2])];
    const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}) => () =>
      tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap);
    expect(run(GELU_KERNEL, { x: ints })).toThrow('MoebenchGelu: x must be float32, received int32');
    expect(run(GELU_GRAD_KERNEL, { x, dy: transposed })).toThrow("MoebenchGeluGrad: dy must have x's shape [4, 3], received [3, 4]");
    expect(run(LAYER_NORM_KERNEL, { x, gamma: wide, beta: gamma }, { epsilon: 1e-5 })).toThrow(
      'received x [4, 3] and gamma [4]',
    );
    expect(run(LAYER_NORM_KERNEL, { x, gamma, beta: short }, { epsilon: 1e-5 })).toThrow(
      'MoebenchLayerNorm: beta must have shape [3], received [2]',
    );
    expect(run(LAYER_NORM_KERNEL, { x, gamma, beta: gamma }, { epsilon: 0 })).toThrow('epsilon must be a finite number > 0 in float32, received 0');
    expect(run(LAYER_NORM_KERNEL, { x, gamma, beta: gamma }, { epsilon: 1e-50 })).toThrow('received 1e-50');
    expect(run(LAYER_NORM_GRAD_KERNEL, { x, dy: x, gamma, mean: gamma, inverseStd: wide })).toThrow(
      'MoebenchLayerNormGrad: mean must have shape [4], received [3]',
    );
    expect(run(SOFTMAX_KERNEL, { x, bias: gamma })).toThrow('MoebenchSoftmax: bias must have shape [4, 3], received [3]');
    expect(run(SOFTMAX_KERNEL, { x: gamma, bias: gamma })).toThrow('x must have rank 2 or more with a bias, received [3]');
    expect(run(SOFTMAX_GRAD_KERNEL, { y: x, dy: transposed })).toThrow('MoebenchSoftmaxGrad: dy must have shape [4, 3], received [3, 4]');
    tf.dispose([x, ints, gamma, transposed, wide, short]);
  });

  it('handles empty tensors', async () => {
    const [y, dx] = await runOnNative(geluCase(fusedGelu, [0, 5]));
    expect(y.shape).toEqual([0, 5]);
    expect(dx.values).toEqual([]);
    const [, , dgamma, dbeta] = await runOnNative(layerNormCase(fusedLayerNorm, 2, 0, 3));
    expect(dgamma.values).toEqual([0, 0, 0, 0, 0, 0]);
    expect(dbeta.values).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

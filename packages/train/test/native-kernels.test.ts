// AdamW, clipScale and the cross-entropy on the native training kernels (wasm with the addon),
// against their composite path on the cpu backend, and on wasm without the native kernels.
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
  type InitBackendOptions,
} from '@moebench/backend';
import { AdamW, clipScale, maskedCrossEntropy, tokenNegativeLogLikelihood, train, type AdamWOptions, type StepMetrics } from '../src/index.js';
// The seeded input generator of the backend's kernel tests, shared instead of copied.
import { values } from '../../backend/test/compare.js';
import { patternTokens, TinyModel, windowBatch, WindowSource } from './tiny-model.js';

const TRAIN_KERNELS = [ADAMW_KERNEL, SUM_OF_SQUARES_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL, SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL];

// Runs where the addon was built at install (a C compiler and OpenBLAS were present), as in CI.
const nativeAvailable = (await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true })) && wasmKernelState().nativeStatus.available;

type Setup = { backend: 'cpu' | 'wasm'; options?: InitBackendOptions };
const CPU: Setup = { backend: 'cpu' };
const NATIVE: Setup = { backend: 'wasm', options: { stockKernels: false, nativeKernels: true, fusedKernels: true } };
const WASM_WITHOUT_NATIVE: Setup = { backend: 'wasm', options: { nativeKernels: false } };

afterAll(async () => {
  await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
});


/** Index of the first element where the arrays differ beyond `tolerance` (absolute plus relative), or -1. */
function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): number {
  if (actual.length !== expected.length) return 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const same = Number.isFinite(e) ? Math.abs(actual[i] - e) <= tolerance * (1 + Math.abs(e)) : Object.is(actual[i], e);
    if (!same) return i;
  }
  return -1;
}

function expectArraysClose(actual: ArrayLike<number>[], expected: ArrayLike<number>[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((array, t) => {
    const index = firstMismatch(actual[t], array, tolerance);
    expect(index, `array ${t}: ${actual[t][index]} against ${array[index]} at index ${index}`).toBe(-1);
  });
}

interface AdamWRun {
  params: Float32Array[];
  firstMoments: Float32Array[];
  secondMoments: Float32Array[];
}

/**
 * Runs `steps` AdamW updates of variables of the given shapes on one backend and reads back the
 * parameters and moments. Step s uses gradients from seed 100 s + i, learning rate 0.01 / s and
 * gradient scale `scales[s]`.
 */
async function runAdamW(
  setup: Setup,
  shapes: number[][],
  options: AdamWOptions,
  scales: number[],
  editGradient?: (step: number, variable: number, gradient: Float32Array) => void,
): Promise<AdamWRun> {
  await initBackend(setup.backend, setup.options);
  const before = tf.memory().numTensors;
  const variables = shapes.map((shape, i) => tf.tidy(() => tf.variable(tf.tensor(values(tf.util.sizeFromShape(shape), i + 1), shape), true)));
  const optimizer = new AdamW(variables, options);
  scales.forEach((scale, step) => {
    const gradients = shapes.map((shape, i) => {
      const gradient = values(tf.util.sizeFromShape(shape), 100 * step + i);
      editGradient?.(step, i, gradient);
      return tf.tensor(gradient, shape);
    });
    optimizer.apply(gradients, 0.01 / (step + 1), scale);
    tf.dispose(gradients);
  });
  const state = optimizer.getState();
  const params = variables.map((variable) => Float32Array.from(variable.dataSync()));
  optimizer.dispose();
  tf.dispose(variables);
  expect(tf.memory().numTensors, `tensors left over on ${setup.backend}`).toBe(before);
  return { params, firstMoments: state.firstMoments, secondMoments: state.secondMoments };
}

function expectSameRun(actual: AdamWRun, expected: AdamWRun, tolerance: number): void {
  expectArraysClose(actual.params, expected.params, tolerance);
  expectArraysClose(actual.firstMoments, expected.firstMoments, tolerance);
  expectArraysClose(actual.secondMoments, expected.secondMoments, tolerance);
}

describe('training kernels without the native kernels', () => {
  it('are absent on cpu and on wasm without the addon', async () => {
    await initBackend('cpu');
    for (const name of TRAIN_KERNELS) expect(hasKernel(name), `${name} on cpu`).toBe(false);
    await initBackend('wasm', { nativeKernels: false });
    for (const name of TRAIN_KERNELS) expect(hasKernel(name), `${name} on wasm`).toBe(false);
  });

  it('leave AdamW on its composite path, equal to cpu', async () => {
    const shapes = [[3, 5], [17]];
    const expected = await runAdamW(CPU, shapes, {}, [1, 0.5, 1]);
    const actual = await runAdamW(WASM_WITHOUT_NATIVE, shapes, {}, [1, 0.5, 1]);
    expectSameRun(actual, expected, 1e-6);
  });

  it('leave the loss and clipScale on their composite paths', async () => {
    const measure = async (setup: Setup) => {
      await initBackend(setup.backend, setup.options);
      return tf.tidy(() => {
        const logits = tf.tensor3d(values(2 * 3 * 7, 5), [2, 3, 7]);
        const targets = tf.tensor2d([0, 6, 3, 2, 1, 6], [2, 3], 'int32');
        const gradient = tf.grad((x: tf.Tensor) => maskedCrossEntropy(x as tf.Tensor3D, targets))(logits);
        return [maskedCrossEntropy(logits, targets).dataSync()[0], clipScale([gradient], 0.01).norm];
      });
    };
    const expected = await measure(CPU);
    const actual = await measure(WASM_WITHOUT_NATIVE);
    expect(actual[0]).toBeCloseTo(expected[0], 6);
    expect(actual[1]).toBeCloseTo(expected[1], 6);
  });
});

describe.runIf(nativeAvailable)('AdamW on the native kernel', () => {
  const CASES: [string, number[][], AdamWOptions, number[]][] = [
    ['with decay (matrices) and without (vectors)', [[1], [17], [3, 5], [300, 257]], {}, [1, 1, 1, 1]],
    ['with a gradient scale', [[17], [4, 33]], { beta1: 0.8, beta2: 0.99, weightDecay: 0.3 }, [0.25, 1, 0.7, 0.05]],
    ['without weight decay', [[2, 9], [5]], { weightDecay: 0 }, [1, 0.5, 1]],
    // Above twice the kernel's per-thread grain (2^19 elements), so two threads share the update.
    ['on a variable split over threads', [[1100, 1001], [7]], { decays: () => true }, [1, 0.5]],
  ];
  for (const [name, shapes, options, scales] of CASES) {
    it(`matches the composite update on cpu ${name}`, async () => {
      const expected = await runAdamW(CPU, shapes, options, scales);
      const actual = await runAdamW(NATIVE, shapes, options, scales);
      // The same float32 operations in the same order, from the same folded constants.
      expectSameRun(actual, expected, 0);
    });
  }

  it('runs one kernel per update and keeps the variables', async () => {
    await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
    const variables = [tf.variable(tf.ones([4, 3])), tf.variable(tf.zeros([3]))];
    const names = variables.map((variable) => variable.name);
    const optimizer = new AdamW(variables);
    const gradients = [tf.fill([4, 3], 0.5), tf.fill([3], -0.25)];
    optimizer.apply(gradients, 0.01);
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => optimizer.apply(gradients, 0.01));

    expect(profile.kernels.map((kernel) => kernel.name)).toEqual([ADAMW_KERNEL]);
    expect(tf.memory().numTensors).toBe(before);
    expect(optimizer.variables[0]).toBe(variables[0]);
    expect(variables.map((variable) => variable.name)).toEqual(names);
    expect(variables[0].trainable).toBe(true);
    // The update reached the variables themselves: two steps of about lr each, in the descent direction.
    expect(variables[0].dataSync()[0]).toBeLessThan(1 - 0.015);
    expect(variables[1].dataSync()[0]).toBeGreaterThan(0.015);
    tf.dispose([...variables, ...gradients]);
    optimizer.dispose();
  });

  it('round-trips its state and continues as an uninterrupted run', async () => {
    await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
    const make = () => [tf.variable(tf.tensor2d(values(12, 1), [3, 4])), tf.variable(tf.tensor1d(values(4, 2)))];
    const gradientsAt = (step: number) => [tf.tensor2d(values(12, 10 + step), [3, 4]), tf.tensor1d(values(4, 20 + step))];
    const applyStep = (optimizer: AdamW, step: number) => {
      const gradients = gradientsAt(step);
      optimizer.apply(gradients, 0.02, 0.8);
      tf.dispose(gradients);
    };

    const uninterrupted = make();
    const first = new AdamW(uninterrupted);
    for (let step = 0; step < 4; step++) applyStep(first, step);

    const resumed = make();
    const second = new AdamW(resumed);
    for (let step = 0; step < 2; step++) applyStep(second, step);
    const state = second.getState();
    const third = new AdamW(resumed);
    third.setState(state);
    for (let step = 2; step < 4; step++) applyStep(third, step);

    expect(third.step).toBe(4);
    expectArraysClose(
      resumed.map((variable) => variable.dataSync()),
      uninterrupted.map((variable) => variable.dataSync()),
      0,
    );
    tf.dispose([...uninterrupted, ...resumed]);
    [first, second, third].forEach((optimizer) => optimizer.dispose());
  });

  it('turns a NaN or Inf gradient into NaN parameters as the composite does', async () => {
    const poison = (step: number, variable: number, gradient: Float32Array) => {
      if (step !== 1 || variable !== 0) return;
      gradient[2] = NaN;
      gradient[7] = Infinity;
    };
    const expected = await runAdamW(CPU, [[3, 4], [5]], {}, [1, 1, 1], poison);
    const actual = await runAdamW(NATIVE, [[3, 4], [5]], {}, [1, 1, 1], poison);
    expectSameRun(actual, expected, 0);
    expect(actual.params[0][2]).toBeNaN();
    expect(actual.params[0][7]).toBeNaN();
    expect(actual.params[0][0]).not.toBeNaN();
  });
});

describe.runIf(nativeAvailable)('clipScale on the native kernel', () => {
  const measure = async (setup: Setup, sizes: number[], maxNorm: number, edit?: (gradients: Float32Array[]) => void) => {
    await initBackend(setup.backend, setup.options);
    const arrays = sizes.map((size, i) => values(size, 30 + i));
    edit?.(arrays);
    const gradients = arrays.map((array) => tf.tensor1d(array));
    const before = tf.memory().numTensors;
    const result = clipScale(gradients, maxNorm);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(gradients);
    return result;
  };

  it('matches the composite norm and scale on cpu', async () => {
    // The last size is above twice the kernel's per-thread grain (2^20 elements).
    for (const sizes of [[1], [17, 3], [5000, 1, 8191, 77], [2_200_003, 9]]) {
      const expected = await measure(CPU, sizes, 1);
      const actual = await measure(NATIVE, sizes, 1);
      expect(Math.abs(actual.norm - expected.norm) / expected.norm, `sizes ${sizes}`).toBeLessThan(1e-6);
      expect(Math.abs(actual.scale - expected.scale) / expected.scale, `sizes ${sizes}`).toBeLessThan(1e-6);
    }
  });

  it('returns the norm of [3, 4] and [12] as 13', async () => {
    await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
    const gradients = [tf.tensor1d([3, 4]), tf.tensor1d([12])];
    expect(clipScale(gradients, 6.5)).toEqual({ scale: 0.5, norm: 13 });
    tf.dispose(gradients);
  });

  it('reports a NaN or Inf norm and leaves the scale at 1', async () => {
    const nan = await measure(NATIVE, [40, 9], 1, (arrays) => (arrays[1][3] = NaN));
    expect(nan.norm).toBeNaN();
    expect(nan.scale).toBe(1);
    const overflow = await measure(NATIVE, [40, 9], 1, (arrays) => (arrays[0][0] = 3e19));
    expect(overflow.norm).toBe(Infinity);
    expect(overflow.scale).toBe(1);
  });
});

describe.runIf(nativeAvailable)('cross-entropy on the native kernels', () => {
  /** Computes the masked cross-entropy, its gradient for the logits and the per-position nll on one backend. */
  const lossAndGradient = async (setup: Setup, shape: [number, number, number], masked: boolean, edit?: (logits: Float32Array) => void) => {
    const [batch, seqLen, vocab] = shape;
    await initBackend(setup.backend, setup.options);
    const before = tf.memory().numTensors;
    const logitValues = values(batch * seqLen * vocab, 7).map((x, i) => 6 * x + (i % 5) - 30);
    edit?.(logitValues);
    const targetValues = Int32Array.from(values(batch * seqLen, 8), (x) => Math.floor(((x + 1) / 2) * vocab) % vocab);
    targetValues[0] = 0;
    targetValues[targetValues.length - 1] = vocab - 1;
    const maskValues = Float32Array.from(values(batch * seqLen, 9), (x) => (x > -0.3 ? 1 : 0));
    const result = tf.tidy(() => {
      const logits = tf.tensor3d(logitValues, shape);
      const targets = tf.tensor2d(targetValues, [batch, seqLen], 'int32');
      const mask = masked ? tf.tensor2d(maskValues, [batch, seqLen]) : undefined;
      const lossOf = (x: tf.Tensor) => maskedCrossEntropy(x as tf.Tensor3D, targets, mask);
      const { value, grad } = tf.valueAndGrad(lossOf)(logits);
      const nll = tokenNegativeLogLikelihood(logits, targets);
      return { loss: value.dataSync()[0], gradient: Float32Array.from(grad.dataSync()), nll: Float32Array.from(nll.dataSync()) };
    });
    expect(tf.memory().numTensors, `tensors left over on ${setup.backend}`).toBe(before);
    return result;
  };

  const CASES: [string, [number, number, number], boolean][] = [
    ['one position of two classes', [1, 1, 2], false],
    ['17 classes with a loss mask', [2, 3, 17], true],
    ['the quick suite size', [16, 64, 256], false],
    // Above twice the kernel's per-thread grain (2^17 logits).
    ['a batch split over threads, masked', [8, 128, 300], true],
  ];
  for (const [name, shape, masked] of CASES) {
    it(`matches the composite loss and gradient on cpu: ${name}`, async () => {
      const expected = await lossAndGradient(CPU, shape, masked);
      const actual = await lossAndGradient(NATIVE, shape, masked);
      expect(Math.abs(actual.loss - expected.loss)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(expected.loss)));
      expectArraysClose([actual.nll, actual.gradient], [expected.nll, expected.gradient], 1e-6);
    });
  }

  it('gives NaN loss for non-finite logits', async () => {
    for (const [position, value] of [
      [3, NaN],
      [5, -Infinity], // target 0 sits at position 0 of the first row
      [1, Infinity],
    ] as const) {
      const edit = (logits: Float32Array) => (logits[position] = value);
      const expected = await lossAndGradient(CPU, [2, 3, 7], false, edit);
      const actual = await lossAndGradient(NATIVE, [2, 3, 7], false, edit);
      expect(actual.loss, `logit ${value}`).toBeNaN();
      expect(expected.loss, `logit ${value}`).toBeNaN();
      expectArraysClose([actual.nll, actual.gradient], [expected.nll, expected.gradient], 1e-6);
    }
  });

  it('rejects a target outside the vocabulary', async () => {
    await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
    const logits = tf.zeros([1, 2, 5]) as tf.Tensor3D;
    const targets = tf.tensor2d([[1, 5]], [1, 2], 'int32');
    const before = tf.memory().numTensors;
    expect(() => maskedCrossEntropy(logits, targets)).toThrow('labels must be integers in [0, 5), received 5 at flat index 1');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([logits, targets]);
  });
});

describe.runIf(nativeAvailable)('training loop on the native kernels', () => {
  it('follows the losses of the loop without them', async () => {
    const vocab = 11;
    const seqLen = 8;
    const tokens = patternTokens(2000, vocab, 1);
    const run = async (setup: Setup) => {
      await initBackend(setup.backend, setup.options);
      const model = new TinyModel({ vocab, width: 4, seed: 2, maskBefore: 2 });
      const steps: StepMetrics[] = [];
      const result = await train({
        model,
        batches: new WindowSource(tokens, 4, seqLen, 7),
        validation: [windowBatch(tokens, [0, 100, 200, 300], seqLen)],
        budget: { unit: 'steps', amount: 10 },
        evaluationInterval: { unit: 'steps', amount: 5 },
        schedule: { peakLearningRate: 0.05, warmupSteps: 3 },
        gradientClipNorm: 0.5,
        seed: 3,
        onStep: (metrics) => void steps.push(metrics),
      });
      model.dispose();
      return { steps, result };
    };
    const expected = await run(WASM_WITHOUT_NATIVE);
    const actual = await run(NATIVE);
    expect(actual.result.status).toBe('done');
    expect(actual.steps).toHaveLength(10);
    actual.steps.forEach((step, i) => {
      expect(step.loss, `loss at step ${step.step}`).toBeCloseTo(expected.steps[i].loss, 5);
      expect(step.gradientNorm, `gradient norm at step ${step.step}`).toBeCloseTo(expected.steps[i].gradientNorm, 5);
    });
  });
});

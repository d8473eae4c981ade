import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { AdamW, clipByGlobalNorm, clipScale, learningRateAt, maskedCrossEntropy, resolveSchedule } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('AdamW', () => {
  it('matches a hand computation of the first step', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const optimizer = new AdamW([p], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, decays: () => true });
    const g = tf.tensor1d([0.5, 0.1]);
    optimizer.apply([g], 0.1);
    // Bias-corrected moments equal g and g^2, so the Adam term is g / |g| = 1 for both entries;
    // p <- p - 0.1 * (1 + 0.1 * p).
    const [a, b] = Array.from(p.dataSync());
    expect(a).toBeCloseTo(1 - 0.1 * (1 + 0.1 * 1), 6);
    expect(b).toBeCloseTo(-2 - 0.1 * (1 + 0.1 * -2), 6);
    tf.dispose([p, g]);
    optimizer.dispose();
  });

  it('matches a scalar reference over several steps', () => {
    const initial = [0.3, -1.2, 2.5, 0.01];
    const gradientsPerStep = [
      [0.5, -0.1, 0.02, 1.5],
      [-0.4, 0.2, 0.01, -2],
      [0.1, 0.1, -0.3, 0.5],
      [0, 0.7, 0.2, -0.1],
    ];
    const rates = [0.01, 0.02, 0.015, 0.005];
    const options = { beta1: 0.8, beta2: 0.9, epsilon: 1e-6, weightDecay: 0.05 };

    const p = tf.variable(tf.tensor2d(initial, [2, 2]));
    const optimizer = new AdamW([p], options);
    const reference = [...initial];
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    gradientsPerStep.forEach((gradient, index) => {
      const t = index + 1;
      for (let i = 0; i < 4; i++) {
        m[i] = options.beta1 * m[i] + (1 - options.beta1) * gradient[i];
        v[i] = options.beta2 * v[i] + (1 - options.beta2) * gradient[i] ** 2;
        const mHat = m[i] / (1 - options.beta1 ** t);
        const vHat = v[i] / (1 - options.beta2 ** t);
        reference[i] -= rates[index] * (mHat / (Math.sqrt(vHat) + options.epsilon) + options.weightDecay * reference[i]);
      }
      const g = tf.tensor2d(gradient, [2, 2]);
      optimizer.apply([g], rates[index]);
      g.dispose();
    });
    const actual = Array.from(p.dataSync());
    reference.forEach((value, i) => expect(actual[i]).toBeCloseTo(value, 5));
    expect(optimizer.step).toBe(4);
    tf.dispose(p);
    optimizer.dispose();
  });

  it('decays weights independently of the gradient', () => {
    // With a zero gradient the Adam term is 0, so only the decoupled decay moves p: p <- p (1 - lr wd).
    // Adam with an L2 penalty would instead route wd * p through the moments and move p by about lr.
    const p = tf.variable(tf.tensor2d([[4, -4]]));
    const optimizer = new AdamW([p], { weightDecay: 0.5 });
    const zero = tf.zeros([1, 2]);
    optimizer.apply([zero], 0.1);
    const [a, b] = Array.from(p.dataSync());
    expect(a).toBeCloseTo(4 * (1 - 0.05), 6);
    expect(b).toBeCloseTo(-4 * (1 - 0.05), 6);
    tf.dispose([p, zero]);
    optimizer.dispose();
  });

  it('skips decay for vectors by default', () => {
    const bias = tf.variable(tf.tensor1d([2]));
    const optimizer = new AdamW([bias], { weightDecay: 0.5 });
    const zero = tf.zeros([1]);
    optimizer.apply([zero], 0.1);
    expect(bias.dataSync()[0]).toBe(2);
    tf.dispose([bias, zero]);
    optimizer.dispose();
  });

  it('restores its state exactly', () => {
    const make = () => tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
    const g = tf.tensor2d([[0.1, -0.2], [0.3, 0.05]]);
    const a = make();
    const first = new AdamW([a]);
    first.apply([g], 0.01);
    first.apply([g], 0.01);

    const b = make();
    b.assign(a);
    const second = new AdamW([b]);
    second.setState(first.getState());
    first.apply([g], 0.01);
    second.apply([g], 0.01);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(second.step).toBe(3);
    tf.dispose([a, b, g]);
    first.dispose();
    second.dispose();
  });

  it('rejects bad options and mismatched gradients', () => {
    const p = tf.variable(tf.zeros([2]));
    expect(() => new AdamW([p], { beta1: 1 })).toThrow('AdamW option beta1 must be a number > 0 and < 1, received 1');
    expect(() => new AdamW([p], { weightDecay: -1 })).toThrow('AdamW option weightDecay must be a number >= 0, received -1');
    const optimizer = new AdamW([p]);
    expect(() => optimizer.apply([], 0.1)).toThrow('expected 1 gradients (one per variable), received 0');
    const wrong = tf.zeros([3]);
    expect(() => optimizer.apply([wrong], 0.1)).toThrow(/gradient 0 has shape \[3\] but variable .* has shape \[2\]/);
    expect(() => optimizer.apply([wrong], NaN)).toThrow('learningRate must be a finite number >= 0, received NaN');
    tf.dispose([p, wrong]);
    optimizer.dispose();
  });

  it('leaves no tensors behind per update', () => {
    const p = tf.variable(tf.ones([3, 3]));
    const g = tf.ones([3, 3]);
    const optimizer = new AdamW([p]);
    optimizer.apply([g], 0.1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) optimizer.apply([g], 0.1);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([p, g]);
    optimizer.dispose();
  });
});

describe('learningRateAt', () => {
  const schedule = resolveSchedule({ peakLearningRate: 1e-2, minLearningRate: 1e-3, warmupSteps: 4 });

  it('warms up linearly to the peak', () => {
    expect([0, 1, 2, 3].map((step) => learningRateAt(schedule, step, 0))).toEqual([0.0025, 0.005, 0.0075, 0.01]);
  });

  it('decays along a cosine to the floor', () => {
    expect(learningRateAt(schedule, 4, 0)).toBeCloseTo(1e-2, 12);
    expect(learningRateAt(schedule, 50, 0.5)).toBeCloseTo(5.5e-3, 12);
    expect(learningRateAt(schedule, 60, 0.25)).toBeCloseTo(1e-3 + 9e-3 * 0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(learningRateAt(schedule, 99, 1)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(schedule, 120, 1.5)).toBeCloseTo(1e-3, 12);
  });

  it('defaults the floor to a tenth of the peak', () => {
    expect(resolveSchedule({ peakLearningRate: 0.02 })).toEqual({ peakLearningRate: 0.02, minLearningRate: 0.002, warmupSteps: 100 });
  });

  it('rejects bad schedule fields', () => {
    expect(() => resolveSchedule({ peakLearningRate: 0 })).toThrow('schedule.peakLearningRate must be a number > 0, received 0');
    expect(() => resolveSchedule({ peakLearningRate: 1e-3, minLearningRate: 1e-2 })).toThrow(
      'schedule.minLearningRate must be a number in [0, peakLearningRate = 0.001], received 0.01',
    );
    expect(() => resolveSchedule({ warmupSteps: 2.5 })).toThrow('schedule.warmupSteps must be an integer >= 0, received 2.5');
  });
});

describe('clipByGlobalNorm', () => {
  it('scales gradients above the maximum norm', () => {
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor1d([12]);
    const { gradients, norm } = clipByGlobalNorm([a, b], 6.5);
    expect(norm).toBeCloseTo(13, 5);
    expect(Array.from(gradients[0].dataSync())).toEqual([1.5, 2]);
    expect(Array.from(gradients[1].dataSync())).toEqual([6]);
    tf.dispose([a, b, ...gradients]);
  });

  it('passes gradients below the maximum unchanged', () => {
    const a = tf.tensor1d([3, 4]);
    const { gradients, norm } = clipByGlobalNorm([a], 10);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(gradients[0].dataSync())).toEqual([3, 4]);
    tf.dispose([a, ...gradients]);
  });

  it('reports a NaN norm and does not clip', () => {
    const a = tf.tensor1d([NaN, 1]);
    const { gradients, norm } = clipByGlobalNorm([a], 1);
    expect(norm).toBeNaN();
    expect(gradients[0].dataSync()[1]).toBe(1);
    tf.dispose([a, ...gradients]);
  });
});

describe('clipScale', () => {
  it('returns maxNorm / norm above the maximum and 1 below it', () => {
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor1d([12]);
    const above = clipScale([a, b], 6.5);
    expect(above.norm).toBeCloseTo(13, 5);
    expect(above.scale).toBeCloseTo(0.5, 6);
    expect(clipScale([a, b], 20).scale).toBe(1);
    expect(clipScale([a, b], 0)).toEqual({ scale: 1, norm: above.norm });
    expect(clipScale([a, b], Infinity).scale).toBe(1);
    const notFinite = tf.tensor1d([NaN]);
    expect(clipScale([notFinite], 1).scale).toBe(1);
    tf.dispose([a, b, notFinite]);
  });

  it('rejects a negative maxNorm', () => {
    expect(() => clipScale([], -1)).toThrow('clipScale: maxNorm must be a number >= 0 (0 or Infinity: no clipping), received -1');
  });
});

describe('AdamW with a gradient scale', () => {
  it('matches AdamW on gradients clipped by clipByGlobalNorm, over several steps', () => {
    const initial = [[0.3, -1.2, 2.5, 0.01], [0.7, -0.4]];
    const steps = [
      [[5, -1, 0.2, 15], [2, -3]],
      [[-4, 2, 0.1, -20], [0.5, 0.5]],
      [[0.01, 0.02, -0.03, 0.05], [0, 0.1]],
    ];
    const make = () => [tf.variable(tf.tensor2d(initial[0], [2, 2])), tf.variable(tf.tensor1d(initial[1]))];
    const copied = make();
    const scaled = make();
    const options = { beta1: 0.8, beta2: 0.9, epsilon: 1e-6, weightDecay: 0.05 };
    const copying = new AdamW(copied, options);
    const scaling = new AdamW(scaled, options);
    const before = tf.memory().numTensors;
    for (const step of steps) {
      const gradients = [tf.tensor2d(step[0], [2, 2]), tf.tensor1d(step[1])];
      const clipped = clipByGlobalNorm(gradients, 1);
      copying.apply(clipped.gradients, 0.01);
      scaling.apply(gradients, 0.01, clipScale(gradients, 1).scale);
      tf.dispose([...gradients, ...clipped.gradients]);
    }
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < 2; i++) {
      const expected = Array.from(copied[i].dataSync());
      Array.from(scaled[i].dataSync()).forEach((value, j) => expect(value).toBeCloseTo(expected[j], 6));
    }
    const copiedState = copying.getState();
    const scaledState = scaling.getState();
    scaledState.secondMoments[0].forEach((value, j) => expect(value).toBeCloseTo(copiedState.secondMoments[0][j], 6));
    tf.dispose([...copied, ...scaled]);
    copying.dispose();
    scaling.dispose();
  });

  it('runs 13 kernels per decaying variable and 12 per other variable', async () => {
    const matrix = tf.variable(tf.ones([2, 2]));
    const vector = tf.variable(tf.ones([2]));
    const optimizer = new AdamW([matrix, vector]);
    const gradients = [tf.ones([2, 2]), tf.ones([2])];
    const profile = await tf.profile(() => optimizer.apply(gradients, 0.01, 0.5));
    expect(profile.kernels.length).toBe(13 + 12);
    tf.dispose([matrix, vector, ...gradients]);
    optimizer.dispose();
  });

  it('rejects a gradient scale that is not a finite number > 0', () => {
    const p = tf.variable(tf.ones([2]));
    const optimizer = new AdamW([p]);
    const g = tf.ones([2]);
    expect(() => optimizer.apply([g], 0.1, 0)).toThrow('AdamW.apply: gradientScale must be a finite number > 0, received 0');
    expect(() => optimizer.apply([g], 0.1, NaN)).toThrow('received NaN');
    expect(optimizer.step).toBe(0);
    tf.dispose([p, g]);
    optimizer.dispose();
  });
});

describe('maskedCrossEntropy', () => {
  it('equals ln(vocab) for uniform logits', () => {
    const logits = tf.zeros([2, 3, 8]) as tf.Tensor3D;
    const targets = tf.tensor2d([[0, 1, 2], [3, 4, 5]], [2, 3], 'int32');
    const loss = maskedCrossEntropy(logits, targets);
    expect(loss.dataSync()[0]).toBeCloseTo(Math.log(8), 6);
    tf.dispose([logits, targets, loss]);
  });

  it('averages only the masked positions', () => {
    // Row 0: target 0 has logit ln 3 against two zeros, so p = 3 / 5 and nll = ln(5 / 3).
    // Row 1: target 2 has logit 0 against ln 3 and 0, so nll = ln 5. The masked-out position is ln 5 too.
    const logits = tf.tensor3d([[[Math.log(3), 0, 0], [Math.log(3), 0, 0]]], [1, 2, 3]);
    const targets = tf.tensor2d([[0, 2]], [1, 2], 'int32');
    const all = maskedCrossEntropy(logits, targets);
    const first = maskedCrossEntropy(logits, targets, tf.tensor2d([[1, 0]]));
    expect(all.dataSync()[0]).toBeCloseTo((Math.log(5 / 3) + Math.log(5)) / 2, 6);
    expect(first.dataSync()[0]).toBeCloseTo(Math.log(5 / 3), 6);
    tf.dispose([logits, targets, all, first]);
  });
});

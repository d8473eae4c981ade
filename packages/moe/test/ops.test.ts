import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { addBias, addGroupBias, dense, denseSplit, gelu, groupedLayerNorm, layerNorm, sumRows } from '../src/index.js';
import { maxAbsDiff, values } from './reference.js';

/** GELU's tanh form written with the stock ops (tanh and pow), as a reference. */
const tanhGelu = (v: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(v, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(v, tf.mul(tf.pow(v, 3), 0.044715)), Math.sqrt(2 / Math.PI)))));

/** Layer norm written with the stock ops, gradients by tfjs's autodiff. */
const stockLayerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor => {
  const { mean, variance } = tf.moments(x, x.rank - 1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
};

describe.each(['cpu', 'wasm'] as const)('shared ops on %s', (backend) => {
  it('gelu at hand-computed points', async () => {
    await initBackend(backend);
    const x = tf.tensor1d([-1, 0, 1, 3]);
    const [out, slope] = [gelu(x), tf.grad(gelu)(x)];
    [-0.15880801, 0, 0.84119199, 2.99636261].forEach((want, i) => expect(values(out)[i]).toBeCloseTo(want, 5));
    [-0.0829641, 0.5, 1.0829641, 1.0115842].forEach((want, i) => expect(values(slope)[i]).toBeCloseTo(want, 5));
    tf.dispose([x, out, slope]);
  });

  it('gelu against the tanh and erf forms', async () => {
    await initBackend(backend);
    const x = tf.linspace(-8, 8, 161);
    const erfGelu = (v: tf.Tensor) => tf.mul(tf.mul(v, 0.5), tf.add(1, tf.erf(tf.mul(v, Math.SQRT1_2))));
    const [fast, reference, exact] = tf.tidy(() => [gelu(x), tanhGelu(x), erfGelu(x)]);
    expect(maxAbsDiff(fast, reference)).toBeLessThan(1e-5);
    expect(maxAbsDiff(fast, exact)).toBeLessThan(5e-4);
    expect(maxAbsDiff(fast, exact)).toBeGreaterThan(1e-4);
    const [fastGradient, referenceGradient] = [tf.grad(gelu)(x), tf.grad(tanhGelu)(x)];
    expect(maxAbsDiff(fastGradient, referenceGradient)).toBeLessThan(1e-5);
    tf.dispose([x, fast, reference, exact, fastGradient, referenceGradient]);
  });

  it('layerNorm against a hand row and stock ops', async () => {
    await initBackend(backend);
    const hand = tf.tidy(() => values(layerNorm(tf.tensor2d([[1, 2, 3, 6]]), tf.tensor1d([1, 2, 1, 1]), tf.tensor1d([0, 0, 0, 1]), 1e-12)));
    // mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5
    const std = Math.sqrt(3.5);
    [-2 / std, (2 * -1) / std, 0, 3 / std + 1].forEach((want, i) => expect(hand[i]).toBeCloseTo(want, 5));

    const rng = new Rng(1);
    const x = rng.uniform([2, 5, 6], -2, 2);
    const gamma = rng.uniform([6], 0.5, 1.5) as tf.Tensor1D;
    const beta = rng.uniform([6], -1, 1) as tf.Tensor1D;
    const weights = rng.uniform([2, 5, 6], -1, 1);
    const lossOf = (f: typeof stockLayerNorm) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b, 1e-5), weights));
    const fast = tf.grads(lossOf((a, g, b, e) => layerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D, e)))([x, gamma, beta]);
    const stock = tf.grads(lossOf(stockLayerNorm))([x, gamma, beta]);
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(fast[i], stock[i]), `input ${i}`).toBeLessThan(1e-5);
    const [fastValue, stockValue] = tf.tidy(() => [layerNorm(x, gamma, beta, 1e-5), stockLayerNorm(x, gamma, beta, 1e-5)]);
    expect(fastValue.shape).toEqual([2, 5, 6]);
    expect(maxAbsDiff(fastValue, stockValue)).toBeLessThan(1e-5);
    tf.dispose([x, gamma, beta, weights, ...fast, ...stock, fastValue, stockValue]);
  });

  it('groupedLayerNorm against a per-group loop', async () => {
    await initBackend(backend);
    const rng = new Rng(2);
    const x = rng.uniform([3, 4, 5], -2, 2) as tf.Tensor3D;
    const gamma = rng.uniform([3, 5], 0.5, 1.5) as tf.Tensor2D;
    const beta = rng.uniform([3, 5], -1, 1) as tf.Tensor2D;
    const weights = rng.uniform([3, 4, 5], -1, 1);
    const loop = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.stack([0, 1, 2].map((e) => stockLayerNorm(tf.gather(a, e), tf.gather(g, e), tf.gather(b, e), 1e-5)));
    const grouped = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => groupedLayerNorm(a as tf.Tensor3D, g as tf.Tensor2D, b as tf.Tensor2D, 1e-5);
    const lossOf = (f: typeof loop) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), weights));
    const [fastValue, loopValue] = tf.tidy(() => [grouped(x, gamma, beta), loop(x, gamma, beta)]);
    expect(maxAbsDiff(fastValue, loopValue)).toBeLessThan(1e-5);
    const fast = tf.grads(lossOf(grouped))([x, gamma, beta]);
    const reference = tf.grads(lossOf(loop))([x, gamma, beta]);
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(fast[i], reference[i]), `input ${i}`).toBeLessThan(1e-5);
    tf.dispose([x, gamma, beta, weights, fastValue, loopValue, ...fast, ...reference]);
  });

  it('sumRows, addBias and dense against stock ops', async () => {
    await initBackend(backend);
    const rng = new Rng(3);
    const x = rng.uniform([5, 3], -1, 1) as tf.Tensor2D;
    const kernel = rng.uniform([3, 4], -1, 1) as tf.Tensor2D;
    const bias = rng.uniform([4], -1, 1) as tf.Tensor1D;
    const weights = rng.uniform([5, 4], -1, 1);
    const [summed, stockSum] = tf.tidy(() => [sumRows(x), tf.sum(x, 0)]);
    expect(maxAbsDiff(summed, stockSum)).toBeLessThan(1e-6);

    const fastLoss = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(dense(a, k as tf.Tensor2D, b as tf.Tensor1D), weights));
    const stockLoss = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D), b), weights));
    const fast = tf.grads(fastLoss)([x, kernel, bias]);
    const stock = tf.grads(stockLoss)([x, kernel, bias]);
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(fast[i], stock[i]), `input ${i}`).toBeLessThan(1e-5);
    const biasGradient = tf.grad((b: tf.Tensor) => tf.sum(tf.mul(addBias(tf.matMul(x, kernel), b as tf.Tensor1D), weights)))(bias);
    expect(maxAbsDiff(biasGradient, tf.sum(weights, 0))).toBeLessThan(1e-6);
    tf.dispose([x, kernel, bias, weights, summed, stockSum, ...fast, ...stock, biasGradient]);
  });

  it('denseSplit gives the column blocks of dense and the same gradients, and rejects parts that do not divide', async () => {
    await initBackend(backend);
    const rng = new Rng(4);
    const x = rng.uniform([5, 3], -1, 1) as tf.Tensor2D;
    const kernel = rng.uniform([3, 6], -1, 1) as tf.Tensor2D;
    const bias = rng.uniform([6], -1, 1) as tf.Tensor1D;
    const weights = rng.uniform([5, 2], -1, 1);
    // A loss that weighs the three blocks differently, so a swapped block would change the value.
    const blocksLoss = (blocks: tf.Tensor[]) => tf.sum(tf.mul(tf.add(tf.add(blocks[0], tf.mul(blocks[1], 2)), tf.mul(blocks[2], -3)), weights));
    const fastLoss = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => blocksLoss(denseSplit(a as tf.Tensor2D, k as tf.Tensor2D, b as tf.Tensor1D, 3));
    const stockLoss = (a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => blocksLoss(tf.split(tf.add(tf.matMul(a as tf.Tensor2D, k as tf.Tensor2D), b), 3, 1));
    const [fastValue, stockValue] = tf.tidy(() => [fastLoss(x, kernel, bias), stockLoss(x, kernel, bias)]);
    expect(fastValue.dataSync()[0]).toBeCloseTo(stockValue.dataSync()[0], 5);
    const fast = tf.grads(fastLoss)([x, kernel, bias]);
    const stock = tf.grads(stockLoss)([x, kernel, bias]);
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(fast[i], stock[i]), `input ${i}`).toBeLessThan(1e-5);
    expect(() => denseSplit(x, kernel, bias, 4)).toThrow(/parts must be a positive integer that divides the kernel's 6 outputs, received 4/);
    tf.dispose([x, kernel, bias, weights, fastValue, stockValue, ...fast, ...stock]);
  });

  it('addGroupBias against stock ops', async () => {
    await initBackend(backend);
    const rng = new Rng(5);
    const x = rng.uniform([3, 4, 5], -1, 1) as tf.Tensor3D;
    const bias = rng.uniform([3, 5], -1, 1) as tf.Tensor2D;
    const weights = rng.uniform([3, 4, 5], -1, 1);
    const fastLoss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.square(addGroupBias(a as tf.Tensor3D, b as tf.Tensor2D)), weights));
    const stockLoss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.square(tf.add(a, tf.reshape(b, [3, 1, 5]))), weights));
    const [fastValue, stockValue] = tf.tidy(() => [fastLoss(x, bias), stockLoss(x, bias)]);
    expect(fastValue.dataSync()[0]).toBeCloseTo(stockValue.dataSync()[0], 5);
    const fast = tf.grads(fastLoss)([x, bias]);
    const stock = tf.grads(stockLoss)([x, bias]);
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(fast[i], stock[i]), `input ${i}`).toBeLessThan(1e-5);
    tf.dispose([x, bias, weights, fastValue, stockValue, ...fast, ...stock]);
  });

  it('tensor count flat over steps', async () => {
    await initBackend(backend);
    const rng = new Rng(4);
    const x = rng.uniform([4, 6], -1, 1);
    const gamma = tf.variable(tf.ones([6]) as tf.Tensor1D);
    const beta = tf.variable(tf.zeros([6]) as tf.Tensor1D);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(gelu(layerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-5))) as tf.Scalar);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma, beta]);
  });

  it('shape and epsilon errors', async () => {
    await initBackend(backend);
    tf.tidy(() => {
      const x = tf.zeros([2, 4]);
      expect(() => layerNorm(x, tf.ones([3]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, 1e-5)).toThrow(
        'layerNorm: gamma and beta must have shape [4] to match x [2, 4], received [3] and [4]',
      );
      expect(() => layerNorm(x, tf.ones([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, Number.NaN)).toThrow(
        'layerNorm: epsilon must be a finite number > 0, received NaN',
      );
      expect(() => dense(x, tf.ones([3, 2]) as tf.Tensor2D, tf.zeros([2]) as tf.Tensor1D)).toThrow(
        'dense: x [..., 3] and bias [2] must match kernel [3, 2], received x [2, 4] and bias [2]',
      );
    });
  });
});

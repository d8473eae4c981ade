import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { addBias, gelu, scaleShift, sumRows } from '../src/ops.js';
import { maxAbsDiff } from './reference.js';

describe.each(['cpu', 'wasm'])('shared ops on %s', (backend) => {
  it('gelu equals the tanh form and its gradient', async () => {
    await initBackend(backend);
    const x = tf.linspace(-6, 6, 97);
    const tanhForm = (v: tf.Tensor) =>
      tf.mul(tf.mul(v, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(v, tf.mul(tf.pow(v, 3), 0.044715)), Math.sqrt(2 / Math.PI)))));
    const [fast, reference] = tf.tidy(() => [gelu(x), tanhForm(x)]);
    expect(maxAbsDiff(await fast.data(), await reference.data())).toBeLessThan(1e-5);
    const [fastGradient, referenceGradient] = [tf.grad(gelu)(x), tf.grad(tanhForm)(x)];
    expect(maxAbsDiff(await fastGradient.data(), await referenceGradient.data())).toBeLessThan(1e-5);
    tf.dispose([x, fast, reference, fastGradient, referenceGradient]);
  });

  it('sumRows, addBias and scaleShift match the stock ops and gradients', async () => {
    await initBackend(backend);
    const rng = new Rng(1);
    const x = rng.uniform([5, 3], -1, 1) as tf.Tensor2D;
    const gamma = rng.uniform([3], 0.5, 1.5) as tf.Tensor1D;
    const beta = rng.uniform([3], -1, 1) as tf.Tensor1D;
    const weights = rng.uniform([5, 3], -1, 1);

    const summed = sumRows(x);
    const stockSum = tf.sum(x, 0);
    expect(maxAbsDiff(await summed.data(), await stockSum.data())).toBeLessThan(1e-6);

    const lossOf = (f: (a: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(f(a as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D), weights));
    const cases: Array<[string, (a: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor, (a: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor]> = [
      ['addBias', (a, g, b) => tf.add(addBias(a, b), tf.mul(g, 0)), (a, g, b) => tf.add(tf.add(a, b), tf.mul(g, 0))],
      ['scaleShift', (a, g, b) => scaleShift(a, g, b), (a, g, b) => tf.add(tf.mul(a, g), b)],
    ];
    for (const [name, fast, stock] of cases) {
      const fastGrads = tf.grads(lossOf(fast))([x, gamma, beta]);
      const stockGrads = tf.grads(lossOf(stock))([x, gamma, beta]);
      for (let i = 0; i < 3; i++) expect(maxAbsDiff(await fastGrads[i].data(), await stockGrads[i].data()), `${name} input ${i}`).toBeLessThan(1e-6);
      const [fastValue, stockValue] = [fast(x, gamma, beta), stock(x, gamma, beta)];
      expect(maxAbsDiff(await fastValue.data(), await stockValue.data()), name).toBeLessThan(1e-6);
      tf.dispose([...fastGrads, ...stockGrads, fastValue, stockValue]);
    }
    tf.dispose([x, gamma, beta, weights, summed, stockSum]);
  });
});

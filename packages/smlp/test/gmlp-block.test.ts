import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createGmlpBlock, gelu, layerNorm } from '../src/index.js';
import { maxAbsDiff } from './reference.js';

describe.each(['cpu', 'wasm'])('gMLP block on %s', (backend) => {
  it('starts as the plain FFN x + V(Z1)', async () => {
    await initBackend(backend);
    const [batch, seqLen, dModel, hiddenSize] = [2, 6, 8, 12];
    const block = createGmlpBlock({ dModel, maxSeqLen: seqLen, hiddenSize, initStd: 0.5, seed: 1 });
    const [gamma, beta, uKernel, uBias, , , , , vKernel, vBias] = block.trainableVariables;
    const x = new Rng(2).uniform([batch, seqLen, dModel], -1, 1) as tf.Tensor3D;

    const [output, ffn] = tf.tidy(() => {
      const normalised = tf.reshape(layerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-5), [-1, dModel]);
      const projected = gelu(tf.add(tf.matMul(normalised as tf.Tensor2D, uKernel as tf.Tensor2D), uBias));
      const z1 = tf.slice(projected, [0, 0], [-1, hiddenSize]) as tf.Tensor2D;
      const update = tf.add(tf.matMul(z1, vKernel as tf.Tensor2D), vBias);
      return [block.apply(x), tf.add(x, tf.reshape(update, x.shape))];
    });

    // The gate is 1 + sum_s Ws[t, s] LN(z2)[s]: |Ws| <= 1e-3 / T and |LN(z2)| <= sqrt(h), so
    // it deviates from 1 by at most 1e-3 * sqrt(h), and the output by that times |V(Z1)|.
    const difference = maxAbsDiff(await output.data(), await ffn.data());
    const updateSize = tf.tidy(() => tf.max(tf.abs(tf.sub(ffn, x))).dataSync()[0]);
    expect(difference).toBeLessThanOrEqual(1e-3 * Math.sqrt(hiddenSize) * updateSize + 1e-6);
    expect(updateSize).toBeGreaterThan(0.1);
    tf.dispose([x, output, ffn]);
    block.dispose();
  });

  it('leaves earlier outputs unchanged when later inputs change', async () => {
    await initBackend(backend);
    const [seqLen, dModel] = [8, 4];
    const block = createGmlpBlock({ dModel, maxSeqLen: seqLen, seed: 3 });
    // Large spatial weights, so that a leak from the future would show.
    block.trainableVariables[4].assign(new Rng(4).uniform([seqLen, seqLen], -1, 1) as tf.Tensor2D);
    const base = new Rng(5).uniformArray(seqLen * dModel, -1, 1);
    for (const t of [0, 4, 6]) {
      const changed = base.slice();
      for (let i = (t + 1) * dModel; i < changed.length; i++) changed[i] = -changed[i] + 0.5;
      const [a, b] = tf.tidy(() => [block.apply(tf.tensor3d(base, [1, seqLen, dModel])), block.apply(tf.tensor3d(changed, [1, seqLen, dModel]))]);
      const [valuesA, valuesB] = [await a.data(), await b.data()];
      expect(maxAbsDiff(valuesA.slice(0, (t + 1) * dModel), valuesB.slice(0, (t + 1) * dModel))).toBe(0);
      expect(maxAbsDiff(valuesA, valuesB)).toBeGreaterThan(1e-3);
      tf.dispose([a, b]);
    }
    block.dispose();
  });

  it('gives every variable a finite non-zero gradient', async () => {
    await initBackend(backend);
    const block = createGmlpBlock({ dModel: 4, maxSeqLen: 5, hiddenSize: 6, seed: 6 });
    const x = new Rng(7).uniform([2, 5, 4], -1, 1) as tf.Tensor3D;
    const target = new Rng(8).uniform([2, 5, 4], -1, 1);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(block.apply(x), target))) as tf.Scalar, block.trainableVariables);
    for (const variable of block.trainableVariables) {
      const gradient = await grads[variable.name].data();
      expect(gradient.every(Number.isFinite), variable.name).toBe(true);
      expect(gradient.some((g) => g !== 0), variable.name).toBe(true);
    }
    // The masked upper triangle of the spatial weight gets no gradient.
    const spatial = await grads[block.trainableVariables[4].name].data();
    expect(Math.abs(spatial[1])).toBe(0);
    tf.dispose([x, target, value, ...Object.values(grads)]);
    block.dispose();
  });

  it('is deterministic for a seed and keeps the tensor count flat', async () => {
    await initBackend(backend);
    const x = new Rng(9).uniform([2, 4, 4], -1, 1) as tf.Tensor3D;
    const run = async (seed: number) => {
      const block = createGmlpBlock({ dModel: 4, maxSeqLen: 4, seed });
      const output = tf.tidy(() => block.apply(x));
      const values = await output.data();
      output.dispose();
      block.dispose();
      return values;
    };
    expect(maxAbsDiff(await run(1), await run(1))).toBe(0);
    expect(maxAbsDiff(await run(1), await run(2))).toBeGreaterThan(0);

    const block = createGmlpBlock({ dModel: 4, maxSeqLen: 4, seed: 1 });
    const optimizer = tf.train.sgd(0.1);
    const step = () =>
      tf.tidy(() => {
        optimizer.minimize(() => tf.mean(tf.square(block.apply(x))) as tf.Scalar, false, block.trainableVariables);
      });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    block.dispose();
    x.dispose();
  });
});

describe('gMLP block accounting and options', () => {
  it('counts stored parameters and FLOPs of its three products', async () => {
    await initBackend('cpu');
    const [dModel, hiddenSize, maxSeqLen] = [4, 6, 10];
    const block = createGmlpBlock({ dModel, hiddenSize, maxSeqLen });
    const stored = block.trainableVariables.reduce((sum, v) => sum + v.size, 0);
    expect(block.parameterCount()).toEqual({ total: stored, activePerToken: stored });
    expect(block.flopsPerToken()).toBe(2 * (dModel * 2 * hiddenSize + maxSeqLen * hiddenSize + hiddenSize * dModel));
    expect(block.flopsPerToken(3)).toBe(2 * (dModel * 2 * hiddenSize + 3 * hiddenSize + hiddenSize * dModel));
    expect(block.options.hiddenSize).toBe(hiddenSize);
    block.dispose();
    const defaults = createGmlpBlock({ dModel: 4, maxSeqLen: 2 });
    expect(defaults.options).toEqual({
      dModel: 4, maxSeqLen: 2, hiddenSize: 12, initStd: 0.02, spatialInitEpsilon: 1e-3, layerNormEpsilon: 1e-5, seed: 0, name: undefined,
    });
    defaults.dispose();
  });

  it('names its variables under the given prefix', async () => {
    await initBackend('cpu');
    const block = createGmlpBlock({ dModel: 2, maxSeqLen: 2, name: 'layer3' });
    expect(block.trainableVariables.map((v) => v.name)).toEqual([
      'layer3/norm_gamma', 'layer3/norm_beta', 'layer3/u/kernel', 'layer3/u/bias',
      'layer3/sgu/spatial_weight', 'layer3/sgu/spatial_bias', 'layer3/sgu/norm_gamma', 'layer3/sgu/norm_beta',
      'layer3/v/kernel', 'layer3/v/bias',
    ]);
    block.dispose();
  });

  it('rejects bad options and over-long input', async () => {
    await initBackend('cpu');
    expect(() => createGmlpBlock({ dModel: -4, maxSeqLen: 8 })).toThrow('createGmlpBlock: dModel must be an integer >= 1, received -4');
    expect(() => createGmlpBlock({ dModel: 4, maxSeqLen: 8, initStd: 0 })).toThrow('createGmlpBlock: initStd must be a finite number > 0, received 0');
    expect(() => createGmlpBlock({ dModel: 4, maxSeqLen: 8, name: '' })).toThrow('createGmlpBlock: name must be a non-empty string when given, received ');
    expect(() => createGmlpBlock({ dModel: 4, maxSeqLen: 8, hidden: 12 } as never)).toThrow('createGmlpBlock: unknown option "hidden"');
    const block = createGmlpBlock({ dModel: 4, maxSeqLen: 3 });
    const x = tf.zeros([1, 4, 4]) as tf.Tensor3D;
    expect(() => block.apply(x)).toThrow(/GmlpBlock.apply: sequence length 4 is outside 1\.\.3/);
    x.dispose();
    block.dispose();
  });
});

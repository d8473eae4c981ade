import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createSparseBlock, layerNorm, type SparseBlock } from '../src/index.js';
import { expectCausal, maxAbsDiff, tidyOutput } from './reference.js';

/** Gives every tMoE expert a non-zero output projection, so the BASE layer is no longer the identity. */
function wakeExperts(block: SparseBlock, seed: number): void {
  const rng = new Rng(seed);
  for (const bank of block.tmoe.banks) bank.w2.assign(rng.uniform(bank.w2.shape, -0.5, 0.5));
}

describe.each(['cpu', 'wasm'])('sparse block on %s', (backend) => {
  it('adds sMoE of the normalised input, then applies tMoE', async () => {
    await initBackend(backend);
    const block = createSparseBlock({ dModel: 8, maxSeqLen: 6, smoe: { numExperts: 2, initStd: 0.3 }, tmoe: { numExperts: 4 }, seed: 1 });
    wakeExperts(block, 2);
    const [gamma, beta] = block.trainableVariables;
    gamma.assign(new Rng(3).uniform([8], 0.5, 1.5) as tf.Tensor1D);
    const x = new Rng(4).uniform([2, 6, 8], -1, 1) as tf.Tensor3D;

    for (const training of [false, true]) {
      const [output, expected, mixedOnly] = tf.tidy(() => {
        const result = block.apply(x, { training });
        const normalised = layerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-5);
        const mixed = tf.add(x, block.smoe.apply(normalised).output);
        return [result.output, block.tmoe.apply(mixed, { training }).output, mixed];
      });
      expect(maxAbsDiff(await output.data(), await expected.data())).toBeLessThan(1e-5);
      // tMoE changes the stream, so the check above covers both modules.
      expect(maxAbsDiff(await output.data(), await mixedOnly.data())).toBeGreaterThan(1e-3);
      tf.dispose([output, expected, mixedOnly]);
    }
    x.dispose();
    block.dispose();
  });

  it('starts as x + sMoE(LN(x)), since tMoE starts as the identity', async () => {
    await initBackend(backend);
    const block = createSparseBlock({ dModel: 8, maxSeqLen: 4, smoe: { numExperts: 2 }, tmoe: { numExperts: 2 }, seed: 5 });
    const x = new Rng(6).uniform([2, 4, 8], -1, 1) as tf.Tensor3D;
    const [output, mixed] = tf.tidy(() => {
      const [gamma, beta] = block.trainableVariables;
      return [block.apply(x, { training: true }).output, tf.add(x, block.smoe.apply(layerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-5)).output)];
    });
    expect(maxAbsDiff(await output.data(), await mixed.data())).toBeLessThan(1e-6);
    tf.dispose([x, output, mixed]);
    block.dispose();
  });

  for (const routing of ['deterministic', 'partial-prediction'] as const) {
    it(`is causal in evaluation with ${routing} sMoE routing`, async () => {
      await initBackend(backend);
      const [seqLen, dModel] = [10, 8];
      const block = createSparseBlock({ dModel, maxSeqLen: seqLen, smoe: { numExperts: 2, routing, initStd: 0.3 }, tmoe: { numExperts: 4 }, seed: 7 });
      wakeExperts(block, 8);
      const firstCausal = routing === 'deterministic' ? 0 : block.smoe.prefixLength(seqLen) - 1;
      const base = new Rng(9).uniformArray(seqLen * dModel, -1, 1);
      const run = (values: Float32Array) => tf.tidy(() => block.apply(tf.tensor3d(values, [1, seqLen, dModel]), { training: false }).output);
      await expectCausal(run, base, seqLen, dModel, firstCausal, 4);
      block.dispose();
    });
  }

  it('gives every variable a finite non-zero gradient', async () => {
    await initBackend(backend);
    const block = createSparseBlock({ dModel: 4, maxSeqLen: 6, smoe: { numExperts: 2, routing: 'partial-prediction' }, tmoe: { numExperts: 2 }, seed: 10 });
    wakeExperts(block, 11);
    const x = new Rng(12).uniform([2, 6, 4], -1, 1) as tf.Tensor3D;
    const target = new Rng(13).uniform([2, 6, 4], -1, 1);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(block.apply(x, { training: true }).output, target))) as tf.Scalar,
      block.trainableVariables,
    );
    expect(Object.keys(grads)).toHaveLength(block.trainableVariables.length);
    for (const variable of block.trainableVariables) {
      const gradient = await grads[variable.name].data();
      expect(gradient.every(Number.isFinite), variable.name).toBe(true);
      expect(gradient.some((g) => g !== 0), variable.name).toBe(true);
    }
    tf.dispose([x, target, value, ...Object.values(grads)]);
    block.dispose();
  });

  it('returns the loss mask and statistics of both modules', async () => {
    await initBackend(backend);
    const block = createSparseBlock({ dModel: 4, maxSeqLen: 10, smoe: { numExperts: 2, routing: 'partial-prediction' }, tmoe: { numExperts: 4 }, seed: 14 });
    const x = new Rng(15).uniform([2, 10, 4], -1, 1) as tf.Tensor3D;
    const result = tidyOutput(() => block.apply(x, { training: true }));
    expect(Array.from(await (result.lossMask as tf.Tensor2D).data())).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(result.smoeStats.keptPerExpert).toEqual([2, 2]);
    // Balanced assignment in training: 20 tokens over 4 experts, 5 each.
    expect(result.tmoeStats.tokensPerExpert).toEqual([5, 5, 5, 5]);
    expect((await result.auxLoss.data())[0]).toBe(0);
    tf.dispose([x, result.output, result.auxLoss, result.lossMask as tf.Tensor, ...Object.values(result.losses)]);
    block.dispose();
  });

  it('is deterministic for a seed and keeps the tensor count flat', async () => {
    await initBackend(backend);
    const x = new Rng(16).uniform([2, 5, 4], -1, 1) as tf.Tensor3D;
    const options = { dModel: 4, maxSeqLen: 5, smoe: { numExperts: 2 }, tmoe: { numExperts: 2 }, seed: 17 };
    const block = createSparseBlock(options);
    const again = createSparseBlock(options);
    wakeExperts(block, 18);
    wakeExperts(again, 18);
    const [a, b] = tf.tidy(() => [block.apply(x, { training: true }).output, again.apply(x, { training: true }).output]);
    expect(maxAbsDiff(await a.data(), await b.data())).toBe(0);
    tf.dispose([a, b]);
    again.dispose();

    const optimizer = tf.train.sgd(0.1);
    const step = () =>
      tf.tidy(() => {
        optimizer.minimize(() => tf.mean(tf.square(block.apply(x, { training: true }).output)) as tf.Scalar, false, block.trainableVariables);
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

describe('sparse block accounting and options', () => {
  it('sums the parameters and FLOPs of its modules', async () => {
    await initBackend('cpu');
    const block = createSparseBlock({ dModel: 4, maxSeqLen: 8, smoe: { numExperts: 2 }, tmoe: { numExperts: 4 } });
    const stored = block.trainableVariables.reduce((sum, v) => sum + v.size, 0);
    const { total, activePerToken } = block.parameterCount();
    expect(total).toBe(stored);
    expect(activePerToken).toBe(8 + block.smoe.parameterCount().activePerToken + block.tmoe.parameterCount().activePerToken);
    expect(activePerToken).toBeLessThan(total);
    expect(block.flopsPerToken()).toBe(block.smoe.flopsPerToken(8) + block.tmoe.flopsPerToken());
    expect(block.flopsPerToken(4)).toBe(block.smoe.flopsPerToken(4) + block.tmoe.flopsPerToken());
    block.dispose();
  });

  it('names its variables under the given prefix', async () => {
    await initBackend('cpu');
    const block = createSparseBlock({ dModel: 4, maxSeqLen: 4, smoe: { numExperts: 2 }, tmoe: { numExperts: 2 }, name: 'sparse1' });
    const names = block.trainableVariables.map((v) => v.name);
    expect(names.slice(0, 3)).toEqual(['sparse1/norm_gamma', 'sparse1/norm_beta', 'sparse1/smoe/u/kernel']);
    expect(names.every((n) => n.startsWith('sparse1/'))).toBe(true);
    expect(names.some((n) => n.startsWith('sparse1/tmoe/'))).toBe(true);
    block.dispose();
  });

  it('rejects bad options without leaking variables', async () => {
    await initBackend('cpu');
    const before = tf.memory().numTensors;
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, smoe: { numExperts: 5 } })).toThrow(/numExperts must divide hiddenSize/);
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, tmoe: { numExperts: 0 } })).toThrow(/numExperts/);
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, smoe: { dModel: 8 } as never })).toThrow(
      'createSparseBlock: smoe.dModel is set by the block; set dModel on the block options instead',
    );
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 0 })).toThrow('createSparseBlock: maxSeqLen must be an integer >= 1, received 0');
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, smoe: { numExpert: 2 } } as never)).toThrow('createSmoe: unknown option "numExpert"');
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, tmoe: { auctionEps: 0.1 } } as never)).toThrow('BaseLayer: unknown option "auctionEps"');
    expect(() => createSparseBlock({ dModel: 4, maxSeqLen: 4, seed: Number.NaN })).toThrow(
      'createSparseBlock: seed must be a finite number or a string, received NaN',
    );
    expect(tf.memory().numTensors).toBe(before);
    const block = createSparseBlock({ dModel: 4, maxSeqLen: 4, smoe: { numExperts: 2 }, tmoe: { numExperts: 2 } });
    const x = tf.zeros([1, 5, 4]) as tf.Tensor3D;
    expect(() => block.apply(x, { training: false })).toThrow(/SparseBlock.apply: sequence length 5 is outside 1\.\.4/);
    x.dispose();
    block.dispose();
  });
});

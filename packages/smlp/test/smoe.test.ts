import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createSmoe, gelu, maxScoreAssignment, type Smoe } from '../src/index.js';
import { expectCausal, layerNormRows, maxAbsDiff, tidyOutput, toRows } from './reference.js';

/** Sets every expert's spatial weight and bias to distinct random values (above the diagonal too). */
function randomiseSpatial(smoe: Smoe, seed: number): { weights: Float32Array; biases: Float32Array } {
  const { numExperts, maxSeqLen } = smoe.options;
  const rng = new Rng(seed);
  const weights = rng.uniformArray(numExperts * maxSeqLen * maxSeqLen, -1, 1);
  const biases = rng.uniformArray(numExperts * maxSeqLen, 0, 2);
  smoe.trainableVariables[4].assign(tf.tensor3d(weights, [numExperts, maxSeqLen, maxSeqLen]));
  smoe.trainableVariables[5].assign(tf.tensor2d(biases, [numExperts, maxSeqLen]));
  return { weights, biases };
}

/**
 * Computes sMoE by hand for one sequence: chunk i of LN(Z2) is mixed by the expert expertOf[i] and
 * scaled by gateOf[i]. U, GELU and V come from tensors, the routing and mixing are plain loops.
 */
async function smoeReference(
  smoe: Smoe,
  x: Float32Array,
  spatial: { weights: Float32Array; biases: Float32Array },
  expertOf: ArrayLike<number>,
  gateOf: ArrayLike<number>,
): Promise<number[]> {
  const { dModel, hiddenSize: h, numExperts, maxSeqLen } = smoe.options;
  const seqLen = x.length / dModel;
  const c = h / numExperts;
  const [uKernel, uBias, , , , , vKernel, vBias] = smoe.trainableVariables;
  const projected = tf.tidy(() => gelu(tf.add(tf.matMul(tf.tensor2d(x, [seqLen, dModel]), uKernel as tf.Tensor2D), uBias)));
  const z = toRows(await projected.data(), 2 * h);
  projected.dispose();
  const z2 = layerNormRows(z.map((row) => row.slice(h)));

  const gated = z.map((row, t) =>
    row.slice(0, h).map((z1, channel) => {
      const chunk = Math.floor(channel / c);
      const expert = expertOf[chunk];
      const base = expert * maxSeqLen * maxSeqLen;
      let mixed = spatial.biases[expert * maxSeqLen + t];
      for (let s = 0; s <= t; s++) mixed += spatial.weights[base + t * maxSeqLen + s] * z2[s][channel];
      return z1 * gateOf[chunk] * mixed;
    }),
  );
  const v = toRows(await vKernel.data(), dModel);
  const vb = await vBias.data();
  return gated.flatMap((row) => Array.from({ length: dModel }, (_, out) => row.reduce((sum, value, k) => sum + value * v[k][out], vb[out])));
}

describe.each(['cpu', 'wasm'])('sMoE on %s', (backend) => {
  it('sends chunk i to expert i with deterministic routing', async () => {
    await initBackend(backend);
    const [batch, seqLen, dModel] = [2, 5, 4];
    const smoe = createSmoe({ dModel, maxSeqLen: 6, numExperts: 3, hiddenSize: 6, initStd: 0.5, seed: 1 });
    const spatial = randomiseSpatial(smoe, 2);
    const x = new Rng(3).uniformArray(batch * seqLen * dModel, -1, 1);

    const result = tidyOutput(() => smoe.apply(tf.tensor3d(x, [batch, seqLen, dModel])));
    expect(result.lossMask).toBeUndefined();
    expect(result.stats.tokensPerExpert).toEqual([2, 2, 2]);
    const values = await result.output.data();
    for (let b = 0; b < batch; b++) {
      const sequence = x.slice(b * seqLen * dModel, (b + 1) * seqLen * dModel);
      const expected = await smoeReference(smoe, sequence, spatial, [0, 1, 2], [1, 1, 1]);
      expect(maxAbsDiff(values.slice(b * seqLen * dModel, (b + 1) * seqLen * dModel), expected)).toBeLessThan(1e-4);
      // Swapping the experts of two chunks gives a different result, so the check above can fail.
      const swapped = await smoeReference(smoe, sequence, spatial, [1, 0, 2], [1, 1, 1]);
      expect(maxAbsDiff(values.slice(b * seqLen * dModel, (b + 1) * seqLen * dModel), swapped)).toBeGreaterThan(1e-3);
    }
    tf.dispose([result.output, result.auxLoss]);
    smoe.dispose();
  });

  it('routes chunks by the best prefix score', async () => {
    await initBackend(backend);
    const [batch, seqLen, dModel, numExperts] = [3, 10, 4, 4];
    const smoe = createSmoe({ dModel, maxSeqLen: seqLen, numExperts, hiddenSize: 8, routing: 'partial-prediction', initStd: 0.5, seed: 4 });
    const spatial = randomiseSpatial(smoe, 5);
    const router = smoe.trainableVariables[8];
    router.assign(new Rng(6).uniform(router.shape, -3, 3) as tf.Tensor2D);
    const prefix = smoe.prefixLength(seqLen);
    expect(prefix).toBe(2);
    const x = new Rng(7).uniformArray(batch * seqLen * dModel, -1, 1);

    const result = tidyOutput(() => smoe.apply(tf.tensor3d(x, [batch, seqLen, dModel])));
    const assignment = result.assignment as Int32Array;
    const values = await result.output.data();
    const routerRows = toRows(await router.data(), numExperts);
    const [uKernel, uBias] = smoe.trainableVariables;
    for (let b = 0; b < batch; b++) {
      const sequence = x.slice(b * seqLen * dModel, (b + 1) * seqLen * dModel);
      // Router logits by hand: per chunk, the channel mean of LN(Z2) at each prefix position.
      const projected = tf.tidy(() => gelu(tf.add(tf.matMul(tf.tensor2d(sequence, [seqLen, dModel]), uKernel as tf.Tensor2D), uBias)));
      const z2 = layerNormRows(toRows(await projected.data(), 16).map((row) => row.slice(8)));
      projected.dispose();
      const logits = Array.from({ length: numExperts }, (_, chunk) =>
        Array.from({ length: numExperts }, (_, e) => {
          let logit = 0;
          for (let t = 0; t < prefix; t++) logit += ((z2[t][2 * chunk] + z2[t][2 * chunk + 1]) / 2) * routerRows[t][e];
          return logit;
        }),
      );
      const expertOf = Array.from(assignment.slice(b * numExperts, (b + 1) * numExperts));
      expect([...expertOf].sort()).toEqual([0, 1, 2, 3]);
      const best = bestPermutationScore(logits);
      expect(expertOf.reduce((sum, e, chunk) => sum + logits[chunk][e], 0)).toBeCloseTo(best, 4);
      const gateOf = expertOf.map((e, chunk) => {
        const total = logits[chunk].reduce((sum, l) => sum + Math.exp(l), 0);
        return Math.exp(logits[chunk][e]) / total;
      });
      const expected = await smoeReference(smoe, sequence, spatial, expertOf, gateOf);
      expect(maxAbsDiff(values.slice(b * seqLen * dModel, (b + 1) * seqLen * dModel), expected)).toBeLessThan(1e-4);
    }
    expect(Array.from(await (result.lossMask as tf.Tensor2D).data())).toEqual(
      new Array(batch).fill([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]).flat(),
    );
    expect(result.stats.keptPerExpert).toEqual([3, 3, 3, 3]);
    expect(result.stats.routerEntropy).toBeGreaterThan(0);
    expect(result.stats.routerEntropy).toBeLessThan(Math.log(numExperts));
    tf.dispose([result.output, result.auxLoss, result.lossMask as tf.Tensor]);
    smoe.dispose();
  });

  for (const routing of ['deterministic', 'partial-prediction'] as const) {
    it(`keeps outputs that carry loss causal with ${routing} routing`, async () => {
      await initBackend(backend);
      const [seqLen, dModel] = [10, 4];
      const smoe = createSmoe({ dModel, maxSeqLen: seqLen, numExperts: 2, hiddenSize: 4, routing, initStd: 0.5, seed: 8 });
      randomiseSpatial(smoe, 9);
      if (routing === 'partial-prediction') smoe.trainableVariables[8].assign(new Rng(10).uniform([2, 2], -3, 3) as tf.Tensor2D);
      const firstCausal = routing === 'deterministic' ? 0 : smoe.prefixLength(seqLen) - 1;
      const base = new Rng(11).uniformArray(seqLen * dModel, -1, 1);
      const run = (values: Float32Array) => tf.tidy(() => smoe.apply(tf.tensor3d(values, [1, seqLen, dModel])).output);
      await expectCausal(run, base, seqLen, dModel, firstCausal, 3);
      smoe.dispose();
    });
  }

  it('lets prefix outputs see later prefix tokens', async () => {
    await initBackend(backend);
    const [seqLen, dModel] = [10, 4];
    const smoe = createSmoe({ dModel, maxSeqLen: seqLen, numExperts: 2, hiddenSize: 4, routing: 'partial-prediction', initStd: 0.5, seed: 12 });
    smoe.trainableVariables[8].assign(new Rng(13).uniform([2, 2], -3, 3) as tf.Tensor2D);
    const base = new Rng(14).uniformArray(seqLen * dModel, -1, 1);
    const changed = base.slice();
    // Change only position 1, the last prefix position: position 0's output moves with the routing.
    for (let i = dModel; i < 2 * dModel; i++) changed[i] = 0.5 - changed[i];
    const [a, b] = tf.tidy(() => [tf.tensor3d(base, [1, seqLen, dModel]), tf.tensor3d(changed, [1, seqLen, dModel])].map((x) => smoe.apply(x).output));
    expect(maxAbsDiff((await a.data()).slice(0, dModel), (await b.data()).slice(0, dModel))).toBeGreaterThan(0);
    tf.dispose([a, b]);
    smoe.dispose();
  });

  for (const routing of ['deterministic', 'partial-prediction'] as const) {
    it(`gives every variable a finite non-zero gradient with ${routing} routing`, async () => {
      await initBackend(backend);
      const smoe = createSmoe({ dModel: 4, maxSeqLen: 6, numExperts: 2, hiddenSize: 4, routing, seed: 15 });
      const x = new Rng(16).uniform([2, 6, 4], -1, 1) as tf.Tensor3D;
      const target = new Rng(17).uniform([2, 6, 4], -1, 1);
      const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(smoe.apply(x).output, target))) as tf.Scalar, smoe.trainableVariables);
      expect(Object.keys(grads)).toHaveLength(routing === 'deterministic' ? 8 : 9);
      for (const variable of smoe.trainableVariables) {
        const gradient = await grads[variable.name].data();
        expect(gradient.every(Number.isFinite), variable.name).toBe(true);
        expect(gradient.some((g) => g !== 0), variable.name).toBe(true);
      }
      tf.dispose([x, target, value, ...Object.values(grads)]);
      smoe.dispose();
    });
  }

  it('is deterministic for a seed and keeps the tensor count flat', async () => {
    await initBackend(backend);
    const x = new Rng(18).uniform([2, 5, 4], -1, 1) as tf.Tensor3D;
    const smoe = createSmoe({ dModel: 4, maxSeqLen: 5, numExperts: 2, routing: 'partial-prediction', seed: 19 });
    const again = createSmoe({ dModel: 4, maxSeqLen: 5, numExperts: 2, routing: 'partial-prediction', seed: 19 });
    const [a, b] = tf.tidy(() => [smoe.apply(x).output, again.apply(x).output]);
    expect(maxAbsDiff(await a.data(), await b.data())).toBe(0);
    tf.dispose([a, b]);
    again.dispose();

    const optimizer = tf.train.sgd(0.1);
    const step = () =>
      tf.tidy(() => {
        optimizer.minimize(() => tf.mean(tf.square(smoe.apply(x).output)) as tf.Scalar, false, smoe.trainableVariables);
      });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    smoe.dispose();
    x.dispose();
  });
});

/** Best total score over all one-to-one assignments, by enumeration. */
function bestPermutationScore(scores: number[][]): number {
  const n = scores.length;
  let best = -Infinity;
  const visit = (row: number, used: boolean[], total: number): void => {
    if (row === n) {
      best = Math.max(best, total);
      return;
    }
    for (let col = 0; col < n; col++) {
      if (used[col]) continue;
      used[col] = true;
      visit(row + 1, used, total + scores[row][col]);
      used[col] = false;
    }
  };
  visit(0, new Array(n).fill(false), 0);
  return best;
}

describe('maxScoreAssignment', () => {
  it('finds the best one-to-one assignment on random cases', () => {
    const rng = new Rng(20);
    for (let n = 1; n <= 6; n++) {
      for (let trial = 0; trial < 20; trial++) {
        const flat = rng.uniformArray(n * n, -5, 5);
        const slotOf = maxScoreAssignment(flat, n);
        expect(new Set(slotOf).size).toBe(n);
        const total = Array.from(slotOf).reduce((sum, slot, item) => sum + flat[item * n + slot], 0);
        expect(total).toBeCloseTo(bestPermutationScore(toRows(flat, n)), 5);
      }
    }
  });

  it('rejects a non-square or non-finite score matrix', () => {
    expect(() => maxScoreAssignment([1, 2, 3], 2)).toThrow('maxScoreAssignment: scores must hold n * n values for an integer n >= 1, received 3 values and n = 2');
    expect(() => maxScoreAssignment([1, NaN, 3, 4], 2)).toThrow('maxScoreAssignment: scores must be finite, received NaN at index 1');
  });
});

describe('sMoE accounting and options', () => {
  it('counts stored parameters and one SGU worth of mixing FLOPs', async () => {
    await initBackend('cpu');
    const [dModel, hiddenSize, maxSeqLen, numExperts] = [4, 8, 10, 4];
    const smoe = createSmoe({ dModel, hiddenSize, maxSeqLen, numExperts });
    const stored = smoe.trainableVariables.reduce((sum, v) => sum + v.size, 0);
    expect(stored).toBe(dModel * 2 * hiddenSize + 2 * hiddenSize + 2 * hiddenSize + numExperts * (maxSeqLen * maxSeqLen + maxSeqLen) + hiddenSize * dModel + dModel);
    expect(smoe.parameterCount()).toEqual({ total: stored, activePerToken: stored });
    expect(smoe.flopsPerToken()).toBe(2 * (dModel * 2 * hiddenSize + maxSeqLen * hiddenSize + hiddenSize * dModel));
    smoe.dispose();

    const routed = createSmoe({ dModel, hiddenSize, maxSeqLen, numExperts, routing: 'partial-prediction' });
    expect(routed.trainableVariables[8].shape).toEqual([2, numExperts]);
    expect(routed.flopsPerToken()).toBe(2 * (dModel * 2 * hiddenSize + maxSeqLen * hiddenSize + hiddenSize * dModel + (numExperts * numExperts * 2) / maxSeqLen));
    routed.dispose();
  });

  it('rejects bad options and over-long input', async () => {
    await initBackend('cpu');
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 8, hiddenSize: 6, numExperts: 4 })).toThrow(
      'createSmoe: numExperts must divide hiddenSize (each expert mixes a chunk of hiddenSize / numExperts channels), received hiddenSize 6 and numExperts 4',
    );
    expect(() => createSmoe({ dModel: 6, maxSeqLen: 8 })).toThrow('received hiddenSize 18 (the default 3 * dModel) and numExperts 4');
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 8, routing: 'learned' as never })).toThrow(
      'createSmoe: routing must be one of deterministic, partial-prediction, received learned',
    );
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 8, prefixFraction: 1 })).toThrow(
      'createSmoe: prefixFraction must be a number strictly between 0 and 1, received 1',
    );
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 1, routing: 'partial-prediction' })).toThrow(/prefix of 1/);
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 8, numExperts: Number.NaN })).toThrow('createSmoe: numExperts must be an integer >= 1, received NaN');
    expect(() => createSmoe({ dModel: 4, maxSeqLen: 8, experts: 2 } as never)).toThrow(
      'createSmoe: unknown option "experts"; the options are dModel, maxSeqLen, numExperts,',
    );
    expect(() => createSmoe(undefined as never)).toThrow('createSmoe: options must be an object with at least dModel and maxSeqLen, received undefined');
    const smoe = createSmoe({ dModel: 4, maxSeqLen: 3 });
    const x = tf.zeros([1, 4, 4]) as tf.Tensor3D;
    expect(() => smoe.apply(x)).toThrow(/Smoe.apply: sequence length 4 is outside 1\.\.3/);
    x.dispose();
    smoe.dispose();
    const routed = createSmoe({ dModel: 4, maxSeqLen: 8, routing: 'partial-prediction' });
    const single = tf.zeros([1, 1, 4]) as tf.Tensor3D;
    expect(() => routed.apply(single)).toThrow(
      'Smoe.apply: partial prediction leaves no position with loss in a sequence of 1 tokens (router prefix 1); pass sequences of at least 2 tokens',
    );
    single.dispose();
    routed.dispose();
  });
});

import { initBackend, tf } from '@moebench/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, type ModelConfig } from '../src/index.js';
import { lossAndGradients, randomTokens, TINY } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

// One tMoE expert makes the balanced assignment trivial, so training mode isolates sMoE's routing.
const PARTIAL: ModelConfig = {
  ...TINY,
  seqLen: 10,
  smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 0.3 }, tmoe: { numExperts: 1 } },
};

describe('smlp model', () => {
  it('masks the router prefix out of the loss', () => {
    const model = createModel('smlp', PARTIAL, { seed: 1 });
    const tokens = randomTokens(1, 2, 10, TINY.vocabSize);
    const mask = tf.tidy(() => model.forward(tokens, { training: true, stepSeed: 1 }).lossMask as tf.Tensor2D);
    expect(mask.arraySync()).toEqual([
      [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
      [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
    ]);
    tf.dispose([mask, tokens]);
    model.dispose();
  });

  it('keeps loss positions causal in training with partial prediction', () => {
    const model = createModel('smlp', PARTIAL, { seed: 2 });
    const original = randomTokens(2, 2, 10, TINY.vocabSize);
    // A few steps first: the tMoE output projections start at zero, which would hide any leak.
    for (let step = 1; step <= 3; step++) {
      const { value, grads } = lossAndGradients(model, original, true, step);
      tf.tidy(() => model.trainableVariables.forEach((variable) => variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 0.5)))));
      tf.dispose([value, grads]);
    }
    const logits = (tokens: tf.Tensor2D) =>
      tf.tidy(() => model.forward(tokens, { training: true, stepSeed: 5 }).logits).arraySync() as number[][][];
    const before = logits(original);
    for (let t = 3; t < 9; t++) {
      const altered = tf.tensor2d(
        original.arraySync().map((row) => row.map((id, position) => (position > t ? (id + 3) % TINY.vocabSize : id))),
        [2, 10],
        'int32',
      );
      const after = logits(altered);
      for (let b = 0; b < 2; b++) {
        for (let position = 3; position <= t; position++) {
          const difference = Math.max(...before[b][position].map((value, v) => Math.abs(value - after[b][position][v])));
          expect(difference, `sequence ${b}, position ${position}, tokens changed after ${t}`).toBeLessThan(1e-5);
        }
      }
      altered.dispose();
    }
    original.dispose();
    model.dispose();
  });

  it('reports sMoE and tMoE routing per sparse block', () => {
    const model = createModel('smlp', { ...TINY, layers: 4 }, { seed: 3 });
    const tokens = randomTokens(3, 2, TINY.seqLen, TINY.vocabSize);
    const output = model.forward(tokens, { training: false });
    expect(output.routing.map((entry) => entry.layer)).toEqual(['block1.smoe', 'block1.tmoe', 'block3.smoe', 'block3.tmoe']);
    expect(output.lossMask).toBeUndefined();
    expect(output.routing[0].stats.tokensPerExpert).toEqual([2, 2]);
    tf.dispose([tokens, output.logits, output.auxLoss]);
    model.dispose();
  });

  it('rejects an sMoE width the experts do not divide', () => {
    expect(() => createModel('smlp', { ...TINY, ffnHidden: 13 })).toThrow(
      'the sMoE hidden width (13) must be a multiple of the sMoE experts (2)',
    );
    expect(() => createModel('smlp', { ...TINY, smlp: { smoe: { maxSeqLen: 4 } } })).toThrow('smlp.smoe.maxSeqLen is set by the config field seqLen');
    expect(() => createModel('smlp', { ...TINY, smlp: { mixer: {} } })).toThrow('unknown field "smlp.mixer". Valid fields: smoe, tmoe.');
  });
});

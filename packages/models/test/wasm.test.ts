import { initBackend, tf } from '@moebench/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../src/index.js';
import { CASES, evalLogits, lossAndGradients, randomTokens } from './helpers.js';

// The wasm backend is what most runs train on; these checks repeat the cheap invariants there.
beforeAll(async () => {
  await initBackend('wasm');
});

describe.each(CASES)('$name on wasm', ({ architecture, config, causalFrom }) => {
  it('is causal in evaluation mode', () => {
    const model = createModel(architecture, config, { seed: 3 });
    const time = config.seqLen;
    const cut = Math.max(causalFrom ?? 0, Math.floor(time / 2));
    const original = randomTokens(1, 2, time, config.vocabSize);
    const changed = tf.tensor2d(
      original.arraySync().map((row) => row.map((id, position) => (position > cut ? (id + 1) % config.vocabSize : id))),
      [2, time],
      'int32',
    );
    const before = evalLogits(model, original);
    const after = evalLogits(model, changed);
    tf.dispose([original, changed]);
    const vocab = config.vocabSize;
    for (let b = 0; b < 2; b++) {
      const start = b * time * vocab;
      const keptValues = (cut + 1) * vocab;
      const difference = Math.max(...before.slice(start, start + keptValues).map((value, i) => Math.abs(value - after[start + i])));
      expect(difference).toBeLessThan(1e-5);
      expect(before[start + keptValues]).not.toBe(after[start + keptValues]);
    }
    model.dispose();
  });

  it('trains with finite non-zero gradients and no leaked tensors', () => {
    const model = createModel(architecture, config, { seed: 4 });
    const tokens = randomTokens(2, 4, config.seqLen, config.vocabSize);
    const step = (seed: number) => {
      const { value, grads } = lossAndGradients(model, tokens, true, seed);
      tf.tidy(() => {
        for (const variable of model.trainableVariables) variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 0.1)));
      });
      const maxima = model.trainableVariables.map((variable) => tf.tidy(() => tf.max(tf.abs(grads[variable.name])).dataSync()[0]));
      tf.dispose([value, grads]);
      return maxima;
    };
    step(1);
    const count = tf.memory().numTensors;
    const maxima = step(2);
    expect(tf.memory().numTensors).toBe(count);
    maxima.forEach((maximum, index) => {
      expect(Number.isFinite(maximum), `variable ${index}`).toBe(true);
      expect(maximum, `variable ${index}`).toBeGreaterThan(0);
    });
    tokens.dispose();
    model.dispose();
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng, tf } from '@moebench/backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countMatMulMultiplyAdds, createModel, type LanguageModel } from '../src/index.js';
import { CASES, evalLogits, languageModelLoss, lossAndGradients, randomTokens } from './helpers.js';

const directory = mkdtempSync(join(tmpdir(), 'moebench-models-'));

beforeAll(async () => {
  await initBackend('cpu');
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

/** Applies one plain gradient-descent step with learning rate `rate`. */
function sgdStep(model: LanguageModel, tokens: tf.Tensor2D, rate: number, stepSeed: number): number {
  const { value, grads } = lossAndGradients(model, tokens, true, stepSeed);
  const loss = value.dataSync()[0];
  tf.tidy(() => {
    for (const variable of model.trainableVariables) variable.assign(tf.sub(variable, tf.mul(grads[variable.name], rate)));
  });
  tf.dispose([value, grads]);
  return loss;
}

describe.each(CASES)('$name', ({ architecture, config, causalFrom }) => {
  it('is causal in evaluation mode', () => {
    const model = createModel(architecture, config, { seed: 3 });
    const time = config.seqLen;
    const original = randomTokens(1, 2, time, config.vocabSize);
    const ids = original.arraySync();
    const vocab = config.vocabSize;
    for (let t = causalFrom ?? 0; t < time - 1; t++) {
      const changed = ids.map((row) => row.map((id, position) => (position > t ? (id + 1 + position) % vocab : id)));
      const altered = tf.tensor2d(changed, [2, time], 'int32');
      const before = evalLogits(model, original);
      const after = evalLogits(model, altered);
      for (let b = 0; b < 2; b++) {
        for (let position = 0; position < time; position++) {
          const start = (b * time + position) * vocab;
          const difference = Math.max(...before.slice(start, start + vocab).map((value, v) => Math.abs(value - after[start + v])));
          if (position <= t) expect(difference, `position ${position} after changing tokens beyond ${t}`).toBeLessThan(1e-5);
          else if (position === t + 1) expect(difference, `position ${position} sees its own changed token`).toBeGreaterThan(0);
        }
      }
      altered.dispose();
    }
    original.dispose();
    model.dispose();
  });

  it('gives every variable a finite non-zero gradient', () => {
    const model = createModel(architecture, config, { seed: 4 });
    const tokens = randomTokens(2, 4, config.seqLen, config.vocabSize);
    // One step first: layers that start as the identity (zero output projections) have zero
    // gradients upstream of those projections at initialisation.
    sgdStep(model, tokens, 0.1, 1);
    const { value, grads } = lossAndGradients(model, tokens, true, 2);
    for (const [index, variable] of model.trainableVariables.entries()) {
      const gradient = grads[variable.name];
      expect(gradient, `variable ${index}`).toBeDefined();
      const values = gradient.dataSync();
      expect(values.every(Number.isFinite), `variable ${index} finite`).toBe(true);
      expect(Math.max(...values.map(Math.abs)), `variable ${index} non-zero`).toBeGreaterThan(0);
    }
    tf.dispose([value, grads, tokens]);
    model.dispose();
  });

  it('matches finite differences along a random direction', () => {
    const model = createModel(architecture, config, { seed: 5 });
    const tokens = randomTokens(3, 2, config.seqLen, config.vocabSize);
    sgdStep(model, tokens, 0.1, 1);
    const evalLoss = () => tf.tidy(() => languageModelLoss(model.forward(tokens, { training: false }), tokens).dataSync()[0]);

    const { value, grads } = tf.variableGrads(() => languageModelLoss(model.forward(tokens, { training: false }), tokens), model.trainableVariables);
    const rng = new Rng(9);
    const directions = model.trainableVariables.map((variable) => rng.normalTensor(variable.shape));
    const analytic = model.trainableVariables.reduce((acc, variable, i) => acc + tf.sum(tf.mul(grads[variable.name], directions[i])).dataSync()[0], 0);

    const step = 1e-3;
    const shift = (scale: number) =>
      tf.tidy(() => model.trainableVariables.forEach((variable, i) => variable.assign(tf.add(variable, tf.mul(directions[i], scale)))));
    shift(step);
    const plus = evalLoss();
    shift(-2 * step);
    const minus = evalLoss();
    shift(step);
    const numeric = (plus - minus) / (2 * step);

    expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
    expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-2);
    tf.dispose([value, grads, directions, tokens]);
    model.dispose();
  });

  it('repeats its losses for the same seed', () => {
    const run = (seed: number) => {
      const model = createModel(architecture, config, { seed });
      const tokens = randomTokens(4, 2, config.seqLen, config.vocabSize);
      const evalLoss = () => tf.tidy(() => languageModelLoss(model.forward(tokens, { training: false }), tokens).dataSync()[0]);
      const before = evalLoss();
      const losses = [1, 2, 3, 4, 5].map((step) => sgdStep(model, tokens, 0.1, step));
      const after = evalLoss();
      tokens.dispose();
      model.dispose();
      return { losses, before, after };
    };
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8).losses).not.toEqual(first.losses);
    expect(first.after).toBeLessThan(first.before);
  });

  it('keeps the tensor count flat across steps', () => {
    const model = createModel(architecture, config, { seed: 6 });
    const tokens = randomTokens(5, 2, config.seqLen, config.vocabSize);
    sgdStep(model, tokens, 0.1, 1);
    const after = tf.memory().numTensors;
    for (let step = 2; step <= 4; step++) {
      sgdStep(model, tokens, 0.1, step);
      tf.dispose(tf.tidy(() => model.forward(tokens, { training: false }).logits));
    }
    expect(tf.memory().numTensors).toBe(after);
    const beforeDispose = tf.memory().numTensors;
    tokens.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBeLessThan(beforeDispose - model.trainableVariables.length);
  });

  it('reloads saved weights with identical logits', async () => {
    const saved = createModel(architecture, config, { seed: 10 });
    const tokens = randomTokens(6, 2, config.seqLen, config.vocabSize);
    sgdStep(saved, tokens, 0.1, 1);
    const path = join(directory, `${architecture}.weights`);
    await saved.save(path);

    const loaded = createModel(architecture, config, { seed: 11 });
    expect(Array.from(evalLogits(loaded, tokens))).not.toEqual(Array.from(evalLogits(saved, tokens)));
    await loaded.load(path);
    expect(Array.from(evalLogits(loaded, tokens))).toEqual(Array.from(evalLogits(saved, tokens)));

    // Key order does not matter, values do.
    const reverseKeys = (value: unknown): unknown =>
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).reverse().map(([key, item]) => [key, reverseKeys(item)]))
        : value;
    const reordered = reverseKeys(config) as typeof config;
    const sameConfig = createModel(architecture, reordered, { seed: 12 });
    await sameConfig.load(path);
    expect(Array.from(evalLogits(sameConfig, tokens))).toEqual(Array.from(evalLogits(saved, tokens)));
    sameConfig.dispose();
    const other = createModel(architecture, { ...config, dModel: config.dModel * 2 }, { seed: 11 });
    await expect(other.load(path)).rejects.toThrow(/different config/);
    tf.dispose(tokens);
    for (const model of [saved, loaded, other]) model.dispose();
  });

  it('counts its parameters and FLOPs as the forward pass runs them', async () => {
    const model = createModel(architecture, config, { seed: 12 });
    const accounting = model.accounting();
    const variableTotal = model.trainableVariables.reduce((acc, variable) => acc + variable.size, 0);
    expect(accounting.totalParameters).toBe(variableTotal);

    const batch = 4;
    const tokens = randomTokens(7, batch, config.seqLen, config.vocabSize);
    const count = await countMatMulMultiplyAdds(() => model.forward(tokens, { training: true, stepSeed: 1 }).logits);
    expect(count.kernels).toBeGreaterThan(0);
    expect(2 * count.multiplyAdds / (batch * config.seqLen)).toBe(accounting.forwardFlopsPerToken);
    tokens.dispose();
    model.dispose();
  });
});

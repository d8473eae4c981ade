import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { applyActivation } from '@moebench/moe';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { maxAbsDiff, values } from '../../moe/test/reference.js';
import { balancedAssignment, baseRoute, createBaseLayer, resolveBaseLayerOptions, type BaseLayer } from '../src/index.js';

const sigmoid = (value: number): number => 1 / (1 + Math.exp(-value));

/** Gives every expert a random non-zero output projection, so the experts contribute to the output. */
function randomizeOutputProjections(layer: BaseLayer, seed: string): void {
  const rng = new Rng(seed);
  for (const bank of layer.banks) {
    tf.tidy(() => {
      bank.w2.assign(rng.normalTensor(bank.w2.shape, 0, 0.2));
      bank.b2.assign(rng.normalTensor(bank.b2.shape, 0, 0.2));
    });
  }
}

/** Experts the layer would choose for `x` [S, d], computed in JavaScript from the centroids. */
function referenceAssignment(layer: BaseLayer, x: tf.Tensor2D, training: boolean): Int32Array {
  const { numExperts, dModel } = layer.options;
  const features = x.dataSync();
  const centroids = layer.router.centroids.dataSync();
  const tokens = x.shape[0];
  const affinities = new Float32Array(tokens * numExperts);
  for (let s = 0; s < tokens; s++) {
    for (let e = 0; e < numExperts; e++) {
      let dot = 0;
      for (let i = 0; i < dModel; i++) dot += features[s * dModel + i] * centroids[e * dModel + i];
      affinities[s * numExperts + e] = dot;
    }
  }
  if (training) return balancedAssignment(affinities, tokens, numExperts).experts;
  return Int32Array.from({ length: tokens }, (_, s) => {
    const row = Array.from(affinities.subarray(s * numExperts, (s + 1) * numExperts));
    return row.indexOf(Math.max(...row));
  });
}

/**
 * Computes the layer one token at a time with dense ops: h <- h + FFN_e(LN_e(h)) per sublayer, then
 * y = x + sigmoid(x . w_e) * (h - x).
 */
function naiveLayer(layer: BaseLayer, x: tf.Tensor2D, experts: Int32Array): tf.Tensor2D {
  const { dModel, hiddenSize, layerNormEpsilon, activation } = layer.options;
  const variables = layer.trainableVariables;
  return tf.tidy(() => {
    const rows: tf.Tensor[] = [];
    for (let s = 0; s < x.shape[0]; s++) {
      const e = experts[s];
      const token = tf.slice(x, [s, 0], [1, dModel]); // [1, d]
      const centroid = tf.slice(layer.router.centroids, [e, 0], [1, dModel]);
      const alpha = tf.sigmoid(tf.sum(tf.mul(token, centroid)));
      let hidden: tf.Tensor = token;
      for (let index = 0; index < layer.banks.length; index++) {
        const [scale, bias, w1, b1, w2, b2] = variables.slice(1 + 6 * index, 7 + 6 * index);
        const mean = tf.mean(hidden);
        const variance = tf.mean(tf.square(tf.sub(hidden, mean)));
        const normalized = tf.div(tf.sub(hidden, mean), tf.sqrt(tf.add(variance, layerNormEpsilon)));
        const normed = tf.add(tf.mul(normalized, tf.slice(scale, [e, 0], [1, dModel])), tf.slice(bias, [e, 0], [1, dModel]));
        const w1e = tf.reshape(tf.slice(w1, [e, 0, 0], [1, dModel, hiddenSize]), [dModel, hiddenSize]);
        const w2e = tf.reshape(tf.slice(w2, [e, 0, 0], [1, hiddenSize, dModel]), [hiddenSize, dModel]);
        const inner = applyActivation(tf.add(tf.matMul(normed as tf.Tensor2D, w1e), tf.slice(b1, [e, 0], [1, hiddenSize])), activation);
        const feedForward = tf.add(tf.matMul(inner as tf.Tensor2D, w2e), tf.slice(b2, [e, 0], [1, dModel]));
        hidden = tf.add(hidden, feedForward);
      }
      rows.push(tf.add(token, tf.mul(alpha, tf.sub(hidden, token))));
    }
    return tf.concat(rows, 0) as tf.Tensor2D;
  });
}

describe.each(['cpu', 'wasm'] as const)('BASE layer on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('routes a hand-computed plan in training and evaluation', () => {
    tf.tidy(() => {
      // Centroids e_0 and e_1, so the affinities are the features themselves.
      const centroids = tf.tensor2d([[1, 0], [0, 1]]);
      const features = tf.tensor2d([[2, 0], [1, 0.5], [3, 0], [0, 1]]);

      // Training, C = 2: greedy would send three tokens to expert 0. The balanced optimum keeps the
      // two with the largest margins a[s, 0] - a[s, 1] (tokens 2 and 0: 3 and 2) on expert 0.
      const training = baseRoute(features, centroids, { training: true });
      expect(training.capacity).toBe(2);
      expect(Array.from(training.experts)).toEqual([0, 1, 0, 1]);
      expect(Array.from(training.slots)).toEqual([0, 0, 1, 1]);
      expect(Object.keys(training.losses)).toEqual([]);
      const trainingGates = values(training.gates);
      [2, 0.5, 3, 1].forEach((affinity, s) => expect(trainingGates[s]).toBeCloseTo(sigmoid(affinity), 6));

      // Evaluation: each token to its argmax, capacity = the busiest expert's count (3).
      const evaluation = baseRoute(features, centroids, { training: false });
      expect(evaluation.capacity).toBe(3);
      expect(Array.from(evaluation.experts)).toEqual([0, 0, 0, 1]);
      expect(Array.from(evaluation.slots)).toEqual([0, 1, 2, 0]);
      const evaluationGates = values(evaluation.gates);
      [2, 1, 3, 1].forEach((affinity, s) => expect(evaluationGates[s]).toBeCloseTo(sigmoid(affinity), 6));
    });
  });

  it('fills every expert exactly in training', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'fill' });
    tf.tidy(() => {
      // A skewed batch: every token leans towards the first centroid.
      const centroid = tf.slice(layer.router.centroids, [0, 0], [1, 8]);
      const x = tf.add(new Rng('skewed').normalTensor([32, 8], 0, 0.1), tf.mul(centroid, 30)) as tf.Tensor2D;
      const evaluation = layer.apply(x, { training: false }).stats;
      expect(evaluation.tokensPerExpert[0]).toBeGreaterThan(8);
      const training = layer.apply(x, { training: true }).stats;
      expect(training.tokensPerExpert).toEqual([8, 8, 8, 8]);
      expect(training.droppedFraction).toBe(0);
      expect(training.maxOverMeanLoad).toBe(1);
      expect(training.extra.auctionBids).toBeGreaterThanOrEqual(32);
    });
    layer.dispose();
  });

  it('pads uneven token counts by one slot at most', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'padding' });
    tf.tidy(() => {
      const { stats, output } = layer.apply(new Rng('x').normalTensor([10, 8]), { training: true });
      expect(output.shape).toEqual([10, 8]);
      expect(stats.tokensPerExpert.reduce((a, b) => a + b, 0)).toBe(10);
      for (const count of stats.tokensPerExpert) expect([2, 3]).toContain(count);
    });
    layer.dispose();
  });

  it('routes a token in evaluation regardless of the other tokens', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'causal' });
    randomizeOutputProjections(layer, 'causal-w2');
    tf.tidy(() => {
      const rng = new Rng('batch');
      const batch = rng.normalTensor([12, 8]) as tf.Tensor2D;
      const otherBatch = tf.concat([tf.slice(batch, [0, 0], [5, 8]), rng.normalTensor([7, 8])], 0) as tf.Tensor2D;
      const plan = baseRoute(batch, layer.router.centroids as tf.Tensor2D, { training: false });
      const otherPlan = baseRoute(otherBatch, layer.router.centroids as tf.Tensor2D, { training: false });
      const outputs = values(layer.apply(batch, { training: false }).output);
      const otherOutputs = values(layer.apply(otherBatch, { training: false }).output);

      // Tokens 0..4 are shared; each alone must get the same expert, gate and output.
      for (let s = 0; s < 5; s++) {
        const alone = tf.slice(batch, [s, 0], [1, 8]) as tf.Tensor2D;
        const alonePlan = baseRoute(alone, layer.router.centroids as tf.Tensor2D, { training: false });
        expect(alonePlan.experts[0]).toBe(plan.experts[s]);
        expect(otherPlan.experts[s]).toBe(plan.experts[s]);
        expect(values(alonePlan.gates)[0]).toBeCloseTo(values(plan.gates)[s], 6);
        const aloneOutput = values(layer.apply(alone, { training: false }).output);
        for (let i = 0; i < 8; i++) {
          expect(aloneOutput[i]).toBeCloseTo(outputs[s * 8 + i], 5);
          expect(otherOutputs[s * 8 + i]).toBeCloseTo(outputs[s * 8 + i], 5);
        }
      }
    });
    layer.dispose();
  });

  for (const sublayers of [1, 2]) {
    it(`equals the per-token formula with ${sublayers} sublayer(s)`, () => {
      const layer = createBaseLayer({ dModel: 8, numExperts: 3, hiddenSize: 12, sublayers, seed: `naive-${sublayers}` });
      randomizeOutputProjections(layer, 'naive-w2');
      // Non-trivial layer-norm parameters, so a swapped scale and bias would show.
      tf.tidy(() => {
        const rng = new Rng('norms');
        for (const variable of layer.trainableVariables.filter((v) => v.shape.length === 2 && v !== layer.router.centroids)) {
          variable.assign(tf.add(variable, rng.normalTensor(variable.shape, 0, 0.3)));
        }
      });
      tf.tidy(() => {
        // Scaled up so the gates spread away from 0.5.
        const x = new Rng('naive-x').normalTensor([9, 8], 0, 3) as tf.Tensor2D;
        for (const training of [true, false]) {
          const fast = layer.apply(x, { training }).output;
          const naive = naiveLayer(layer, x, referenceAssignment(layer, x, training));
          expect(maxAbsDiff(fast, naive)).toBeLessThan(1e-4);
          expect(maxAbsDiff(fast, x)).toBeGreaterThan(1e-2);
        }
      });
      layer.dispose();
    });
  }

  it('starts as the identity', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'identity' });
    tf.tidy(() => {
      const x = new Rng('identity-x').normalTensor([2, 6, 8]);
      for (const training of [true, false]) {
        const { output, auxLoss, losses } = layer.apply(x, { training });
        expect(output.shape).toEqual([2, 6, 8]);
        expect(values(output)).toEqual(values(x));
        expect(auxLoss.dataSync()[0]).toBe(0);
        expect(losses).toEqual({});
      }
    });
    layer.dispose();
  });

  it('initialises the centroids orthogonal with gain 0.1', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'centroids' });
    tf.tidy(() => {
      const centroids = layer.router.centroids;
      expect(centroids.shape).toEqual([4, 8]);
      const gram = tf.matMul(centroids, centroids, false, true);
      expect(maxAbsDiff(gram, tf.mul(tf.eye(4), 0.01))).toBeLessThan(1e-6);
      for (const bank of layer.banks) expect(Math.max(...values(bank.w2).map(Math.abs))).toBe(0);
    });
    layer.dispose();
  });

  it('gives every variable a finite non-zero gradient after one step', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'gradients' });
    const x = new Rng('gradient-x').normalTensor([16, 8]);
    const target = new Rng('gradient-target').normalTensor([16, 8]);
    const loss = (): tf.Scalar => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }).output, target)));
    const optimizer = tf.train.sgd(0.1);

    // Before the first step the output projections are zero, so only they (and b2) get a gradient.
    const first = tf.variableGrads(loss, layer.trainableVariables);
    const centroidName = layer.router.centroids.name;
    expect(Math.max(...values(first.grads[centroidName]).map(Math.abs))).toBe(0);
    optimizer.applyGradients(first.grads);
    tf.dispose([first.value, ...Object.values(first.grads)]);

    const second = tf.variableGrads(loss, layer.trainableVariables);
    for (const variable of layer.trainableVariables) {
      const gradient = values(second.grads[variable.name]);
      expect(gradient.every(Number.isFinite), variable.name).toBe(true);
      expect(Math.max(...gradient.map(Math.abs)), variable.name).toBeGreaterThan(1e-7);
    }
    tf.dispose([second.value, ...Object.values(second.grads), x, target]);
    optimizer.dispose();
    layer.dispose();
  });

  it('is deterministic for a seed', () => {
    const run = (): number[] => {
      const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'determinism' });
      const x = new Rng('determinism-x').normalTensor([16, 8]);
      const target = new Rng('determinism-target').normalTensor([16, 8]);
      const optimizer = tf.train.adam(0.01);
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) {
        const cost = optimizer.minimize(
          () => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }).output, target))),
          true,
          layer.trainableVariables,
        );
        losses.push(cost!.dataSync()[0]);
        cost!.dispose();
      }
      tf.dispose([x, target]);
      optimizer.dispose();
      layer.dispose();
      return losses;
    };
    const first = run();
    expect(run()).toEqual(first);
    expect(first[2]).toBeLessThan(first[0]);
  });

  it('releases every tensor it made on dispose', () => {
    const before = tf.memory().numTensors;
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, sublayers: 2, seed: 'dispose', name: 'dispose-check' });
    // Centroids, then per sublayer the two norm variables and the four bank variables.
    expect(tf.memory().numTensors - before).toBe(1 + 2 * 6);
    layer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps the tensor count flat over training steps', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, seed: 'leaks' });
    const x = new Rng('leak-x').normalTensor([16, 8]);
    const optimizer = tf.train.adam(0.01);
    const step = (): void => {
      const cost = optimizer.minimize(
        () => {
          const { output, auxLoss } = layer.apply(x, { training: true });
          return tf.add(tf.mean(tf.square(output)), auxLoss) as tf.Scalar;
        },
        true,
        layer.trainableVariables,
      );
      cost!.dispose();
      tf.tidy(() => {
        layer.apply(x, { training: false });
      });
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    optimizer.dispose();
    layer.dispose();
  });
});

describe('BASE layer options', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('fills in the documented defaults', () => {
    expect(resolveBaseLayerOptions({ dModel: 16 })).toEqual({
      dModel: 16,
      numExperts: 8,
      hiddenSize: 64,
      sublayers: 1,
      auctionEpsilon: 1e-4,
      auctionEpsilonScaling: 8,
      centroidGain: 0.1,
      expertInitScale: 1,
      activation: 'gelu',
      layerNormEpsilon: 1e-5,
      seed: 0,
      name: undefined,
    });
  });

  it('rejects invalid options with the field and the value', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ dModel: 0 }, 'BaseLayer: dModel must be an integer >= 1, received 0'],
      [{ dModel: 8, numExperts: 0 }, 'BaseLayer: numExperts must be an integer >= 1, received 0'],
      [{ dModel: 8, numExperts: -2 }, 'BaseLayer: numExperts must be an integer >= 1, received -2'],
      [{ dModel: 8, hiddenSize: 2.5 }, 'BaseLayer: hiddenSize must be an integer >= 1, received 2.5'],
      [{ dModel: 8, sublayers: 0 }, 'BaseLayer: sublayers must be an integer >= 1, received 0'],
      [{ dModel: 8, auctionEpsilon: 0 }, 'BaseLayer: auctionEpsilon must be a finite number > 0, received 0'],
      [{ dModel: 8, auctionEpsilonScaling: 1 }, 'BaseLayer: auctionEpsilonScaling must be a finite number > 1, received 1'],
      [{ dModel: 8, centroidGain: Number.NaN }, 'BaseLayer: centroidGain must be a finite number >= 0, received NaN'],
      [{ dModel: 8, activation: 'tanh' }, 'BaseLayer: activation must be one of "gelu", "relu", received "tanh"'],
      [{ dModel: 8, layerNormEpsilon: -1 }, 'BaseLayer: layerNormEpsilon must be a finite number > 0, received -1'],
      [{ dModel: 8, seed: {} }, 'BaseLayer: seed must be a finite number or a string, received [object Object]'],
      [{ dModel: 8, experts: 4 }, 'BaseLayer: unknown option "experts"; the options are dModel, numExperts,'],
      [{ dModel: 8, name: 7 }, 'BaseLayer: name must be a non-empty string when given, received 7'],
    ];
    for (const [options, message] of cases) {
      expect(() => createBaseLayer(options as never)).toThrow(message);
    }
  });

  it('rejects more experts than tokens in training', () => {
    const layer = createBaseLayer({ dModel: 4, numExperts: 8, hiddenSize: 8 });
    const x = new Rng('few').normalTensor([2, 3, 4]);
    const numTensors = tf.memory().numTensors;
    expect(() => layer.apply(x, { training: true })).toThrow(
      'balanced assignment in training needs at least as many tokens as experts, received 6 tokens for 8 experts',
    );
    expect(tf.memory().numTensors).toBe(numTensors);
    // Evaluation routes each token alone, so it accepts any number of tokens.
    tf.tidy(() => {
      expect(layer.apply(x, { training: false }).output.shape).toEqual([2, 3, 4]);
    });
    tf.dispose(x);
    layer.dispose();
  });

  it('counts parameters and FLOPs per token', () => {
    const layer = createBaseLayer({ dModel: 8, numExperts: 4, hiddenSize: 16, sublayers: 2 });
    // Centroids 4 x 8 = 32; per expert and sublayer: LN 2 x 8 + W1 8 x 16 + b1 16 + W2 16 x 8 + b2 8 = 296.
    expect(layer.parameterCount()).toEqual({ total: 32 + 4 * 2 * 296, activePerToken: 32 + 2 * 296 });
    expect(layer.trainableVariables.reduce((sum, v) => sum + v.size, 0)).toBe(32 + 4 * 2 * 296);
    // Affinities 2 x 4 x 8 = 64; per sublayer 2 x (8 x 16 + 16 x 8) = 512.
    expect(layer.flopsPerToken()).toBe(64 + 2 * 512);
    layer.dispose();
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(5);
  });
});

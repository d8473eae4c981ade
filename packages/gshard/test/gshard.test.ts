import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { expectGatherMatchesReference, expectRouterGradientMatchesDifferences, trainFourSteps, values } from '../../moe/test/reference.js';
import {
  createGShardLayer,
  gshardCapacity,
  gshardRoute,
  resolveGShardOptions,
  type GShardRouteOptions,
} from '../src/index.js';

const base: GShardRouteOptions = {
  secondExpertPolicy: 'all',
  normalizeGates: 'after-capacity',
  capacityFactor: 0.75,
  evalCapacityTokenFraction: 0.25,
  balanceLossWeight: 0.01,
  zLossWeight: 0,
};

function softmaxRow(logits: number[]): number[] {
  const exps = logits.map(Math.exp);
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / total);
}

// With Wr = I the features are the logits. First and second choices: (0, 1), (1, 0), (0, 2), (0, 1).
const handLogits = [[3, 2, 0], [2, 3, 0], [3, 0, 2], [3, 2, 1]];

describe('gshardCapacity', () => {
  it('uses floor(2 ceil(S / E) x factor) in training', () => {
    expect(gshardCapacity({ tokens: 16, numExperts: 4, capacityFactor: 1, evalCapacityTokenFraction: 0.25, training: true })).toBe(8);
    expect(gshardCapacity({ tokens: 10, numExperts: 4, capacityFactor: 0.75, evalCapacityTokenFraction: 0.25, training: true })).toBe(4);
  });

  it('uses ceil(fraction x S) in evaluation', () => {
    expect(gshardCapacity({ tokens: 16, numExperts: 4, capacityFactor: 1, evalCapacityTokenFraction: 0.25, training: false })).toBe(4);
    expect(gshardCapacity({ tokens: 10, numExperts: 4, capacityFactor: 1, evalCapacityTokenFraction: 0.25, training: false })).toBe(3);
    expect(gshardCapacity({ tokens: 16, numExperts: 4, capacityFactor: 1, evalCapacityTokenFraction: 0, training: false })).toBe(8);
    // A fraction of 1 gives C = S: no dropping in evaluation.
    expect(gshardCapacity({ tokens: 16, numExperts: 4, capacityFactor: 1, evalCapacityTokenFraction: 1, training: false })).toBe(16);
  });

  it('clamps to [1, S] and drops nothing for a factor <= 0', () => {
    expect(gshardCapacity({ tokens: 3, numExperts: 2, capacityFactor: 4, evalCapacityTokenFraction: 0.25, training: true })).toBe(3);
    expect(gshardCapacity({ tokens: 64, numExperts: 64, capacityFactor: 0.1, evalCapacityTokenFraction: 0.25, training: true })).toBe(1);
    expect(gshardCapacity({ tokens: 9, numExperts: 3, capacityFactor: 0, evalCapacityTokenFraction: 0.25, training: true })).toBe(9);
  });
});

describe.each(['cpu', 'wasm'] as const)('GShard on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('routes a hand-computed plan with gates renormalised after capacity', () => {
    tf.tidy(() => {
      const plan = gshardRoute(tf.tensor2d(handLogits), tf.eye(3) as tf.Tensor2D, base, { training: true });
      // C = floor(2 x ceil(4 / 3) x 0.75) = 3. Expert 0 takes the first choices of tokens 0, 2, 3,
      // so token 1's second choice (expert 0) is dropped.
      expect(plan.capacity).toBe(3);
      expect(Array.from(plan.experts)).toEqual([0, 1, 1, 0, 0, 2, 0, 1]);
      expect(Array.from(plan.slots)).toEqual([0, 1, 0, -1, 1, 0, 2, 2]);

      const expected = handLogits.flatMap((row, token) => {
        const probs = softmaxRow(row);
        const [first, second] = [[0, 1], [1, 0], [0, 2], [0, 1]][token];
        if (token === 1) return [1, 0];
        return [probs[first] / (probs[first] + probs[second]), probs[second] / (probs[first] + probs[second])];
      });
      values(plan.gates).forEach((gate, index) => expect(gate).toBeCloseTo(expected[index], 6));

      // Balance loss by hand: first-choice fractions [3/4, 1/4, 0].
      const rows = handLogits.map(softmaxRow);
      const meanProbs = [0, 1, 2].map((e) => rows.reduce((sum, row) => sum + row[e], 0) / 4);
      expect(plan.losses.balance.dataSync()[0]).toBeCloseTo(0.01 * 3 * (0.75 * meanProbs[0] + 0.25 * meanProbs[1]), 7);
    });
  });

  it('keeps the first gate share when normalising before capacity', () => {
    tf.tidy(() => {
      const plan = gshardRoute(tf.tensor2d(handLogits), tf.eye(3) as tf.Tensor2D, { ...base, normalizeGates: 'before-capacity' }, { training: true });
      const probs = softmaxRow(handLogits[1]);
      expect(values(plan.gates)[2]).toBeCloseTo(probs[1] / (probs[1] + probs[0]), 6);
      expect(plan.slots[3]).toBe(-1);
    });
  });

  it('reports fairseq-style routing statistics', () => {
    tf.tidy(() => {
      const plan = gshardRoute(tf.tensor2d(handLogits), tf.eye(3) as tf.Tensor2D, base, { training: true });
      expect(plan.extraStats).toEqual({
        overflowFirstPercent: 0,
        overflowSecondPercent: 25,
        skippedSecondPercent: 0,
        unusedFirstExperts: 1,
        unusedSecondExperts: 0,
        busiestShareFirstPercent: 75,
        idlestShareFirstPercent: 0,
      });
    });
  });

  it('second overflow over sent choices', () => {
    tf.tidy(() => {
      // Six tokens all prefer expert 0, then 1 (p = [0.6, 0.3, 0.1]); the random policy keeps the second
      // choice when the draw is below 2 x 0.3. Capacity 1 (factor 1/4): expert 1 has no first choices, so
      // the first second choice sent takes its slot and the others overflow.
      const tokens = 6;
      const features = tf.tile(tf.tensor2d([[Math.log(0.6), Math.log(0.3), Math.log(0.1)]]), [tokens, 1]) as tf.Tensor2D;
      const options = { ...base, secondExpertPolicy: 'random' as const, capacityFactor: 0.25 };
      const plan = gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: true, rng: new Rng(5) });
      expect(plan.capacity).toBe(1);
      const sent = Array.from({ length: tokens }, (_, t) => plan.experts[2 * t + 1]).filter((e) => e === 1).length;
      expect(sent).toBeGreaterThan(1);
      expect(sent).toBeLessThan(tokens);
      expect(plan.extraStats?.overflowSecondPercent).toBeCloseTo((100 * (sent - 1)) / sent, 6);
      expect(plan.extraStats?.overflowFirstPercent).toBeCloseTo((100 * 5) / 6, 6);
    });
  });

  it('gives a balance loss of alpha under uniform routing', () => {
    tf.tidy(() => {
      const plan = gshardRoute(new Rng(1).normalTensor([16, 4]) as tf.Tensor2D, tf.zeros([4, 8]), base, { training: true });
      expect(plan.losses.balance.dataSync()[0]).toBeCloseTo(0.01, 7);
    });
  });

  it('passes a finite non-zero balance gradient to a zero router', () => {
    tf.tidy(() => {
      const features = new Rng(2).normalTensor([16, 4]) as tf.Tensor2D;
      const gradient = tf.grad((w: tf.Tensor) => gshardRoute(features, w as tf.Tensor2D, base, { training: true }).losses.balance)(tf.zeros([4, 8]));
      const gradientValues = values(gradient);
      expect(gradientValues.every(Number.isFinite)).toBe(true);
      expect(Math.max(...gradientValues.map(Math.abs))).toBeGreaterThan(1e-6);
    });
  });

  it('trains the router through the gates at balanced load', () => {
    tf.tidy(() => {
      const features = tf.eye(4) as tf.Tensor2D;
      const router = tf.add(tf.mul(tf.eye(4), 2), tf.tensor2d([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]])) as tf.Tensor2D;
      const plan = gshardRoute(features, router, { ...base, capacityFactor: 0 }, { training: true });
      expect(Array.from(plan.experts)).toEqual([0, 1, 1, 2, 2, 3, 3, 0]);
      // The balance loss is constant at uniform first-choice load; the gates still carry a gradient.
      const gradient = tf.grad((w: tf.Tensor) => {
        const routed = gshardRoute(features, w as tf.Tensor2D, { ...base, capacityFactor: 0 }, { training: true });
        return tf.add(tf.sum(tf.mul(routed.gates, tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]))), routed.losses.balance) as tf.Scalar;
      })(router);
      const gradientValues = values(gradient);
      expect(gradientValues.every(Number.isFinite)).toBe(true);
      expect(Math.max(...gradientValues.map(Math.abs))).toBeGreaterThan(1e-3);
    });
  });

  it('samples the second expert from the remaining distribution', () => {
    tf.tidy(() => {
      // Every token has probabilities [0.5, 0.3, 0.2]: e1 = 0, and e2 = 1 with probability 0.3 / 0.5.
      const tokens = 4000;
      const row = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
      const features = tf.tile(tf.tensor2d([row]), [tokens, 1]) as tf.Tensor2D;
      const options = { ...base, secondExpertPolicy: 'sampling' as const, capacityFactor: 0 };
      const plan = gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: true, rng: new Rng(3) });
      const seconds = Array.from({ length: tokens }, (_, token) => plan.experts[2 * token + 1]);
      expect(seconds.includes(0)).toBe(false);
      expect(seconds.filter((e) => e === 1).length / tokens).toBeCloseTo(0.6, 1);
      expect(Math.abs(seconds.filter((e) => e === 1).length / tokens - 0.6)).toBeLessThan(0.03);

      const again = gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: true, rng: new Rng(3) });
      expect(Array.from(again.experts)).toEqual(Array.from(plan.experts));
      const evaluation = gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: false });
      expect(evaluation.experts[1]).toBe(1);
      expect(Array.from({ length: tokens }, (_, token) => evaluation.experts[2 * token + 1]).every((e) => e === 1)).toBe(true);

      // With fairseq's reading, evaluation samples too.
      const sampledOptions = { ...options, evalSecondExpertPolicy: 'sampling' as const };
      const sampled = gshardRoute(features, tf.eye(3) as tf.Tensor2D, sampledOptions, { training: false, rng: new Rng(3) });
      expect(Array.from(sampled.experts)).toEqual(Array.from(plan.experts));
      expect(() => gshardRoute(features, tf.eye(3) as tf.Tensor2D, sampledOptions, { training: false })).toThrow(
        'gshardRoute: context.rng is missing; the "sampling" second-expert policy draws from it in evaluation',
      );
    });
  });

  it.each([
    ['after-capacity', 2 * 0.25],
    ['before-capacity', (2 * 0.25) / 0.85],
  ] as const)('random second expert kept at 2 g2 (%s)', (normalizeGates, keepProbability) => {
    tf.tidy(() => {
      // Probabilities [0.6, 0.15, 0.25]: e2 = 2 with p2 = 0.25. fairseq draws against 2 p2 when it
      // normalises after capacity, and against 2 p2 / (p1 + p2) when it normalises before.
      const tokens = 4000;
      const features = tf.tile(tf.tensor2d([[Math.log(0.6), Math.log(0.15), Math.log(0.25)]]), [tokens, 1]) as tf.Tensor2D;
      const options = { ...base, secondExpertPolicy: 'random' as const, capacityFactor: 0, normalizeGates };
      const plan = gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: true, rng: new Rng(4) });
      const kept = Array.from({ length: tokens }, (_, token) => plan.experts[2 * token + 1]).filter((e) => e === 2).length;
      const skipped = Array.from({ length: tokens }, (_, token) => plan.experts[2 * token + 1]).filter((e) => e === -1).length;
      expect(kept + skipped).toBe(tokens);
      expect(Math.abs(kept / tokens - keepProbability)).toBeLessThan(0.03);
      expect(plan.extraStats?.skippedSecondPercent).toBeCloseTo((100 * skipped) / tokens, 6);

      // A token without a second expert gets gate 1 on its first after capacity, and keeps its share before.
      const gates = values(plan.gates);
      const token = Array.from({ length: tokens }, (_, t) => t).find((t) => plan.experts[2 * t + 1] === -1)!;
      expect(gates[2 * token]).toBeCloseTo(normalizeGates === 'after-capacity' ? 1 : 0.6 / 0.85, 6);
      expect(() => gshardRoute(features, tf.eye(3) as tf.Tensor2D, options, { training: true })).toThrow(
        'gshardRoute: context.rng is missing; the "random" second-expert policy draws from it in training',
      );
    });
  });

  it('leaves tokens with both choices dropped at exactly zero', () => {
    const layer = createGShardLayer({ dModel: 3, numExperts: 3, hiddenSize: 6, secondExpertPolicy: 'all', capacityFactor: 0.5 });
    tf.tidy(() => layer.gshardRouter.weights.assign(tf.eye(3) as tf.Tensor2D));
    tf.tidy(() => {
      // All six tokens choose (0, 1) and C = floor(2 x 2 x 0.5) = 2: tokens 0-1 fill both experts,
      // so tokens 2-5 lose both choices.
      const input = tf.tile(tf.tensor2d([[3, 2, 0]]), [6, 1]);
      const { output, stats } = layer.apply(input, { training: true });
      const plan = layer.router.route(input as tf.Tensor2D, { training: true });
      expect(Array.from(plan.slots)).toEqual([0, 0, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1]);
      expect(stats.droppedFraction).toBeCloseTo(8 / 12, 10);
      const rows = values(output);
      expect(rows.slice(6)).toEqual(new Array(12).fill(0));
      expect(rows.slice(0, 6).every((value) => value !== 0)).toBe(true);
    });
    layer.dispose();
  });

  it('matches the one-hot reference in outputs and gradients', () => {
    const layer = createGShardLayer({ dModel: 4, numExperts: 4, hiddenSize: 6, capacityFactor: 0.5, routerInitScale: 8, seed: 5 });
    const input = new Rng(6).normalTensor([12, 4]) as tf.Tensor2D;
    expectGatherMatchesReference(layer, input, () => ({ training: true, rng: new Rng(7) }));
    input.dispose();
    layer.dispose();
  });

  it('matches finite differences in the router gradient', () => {
    // Checks the router gradient independently of the gate code: central differences of the layer loss,
    // with drops, so the after-capacity renormalisation is covered.
    const layer = createGShardLayer({ dModel: 4, numExperts: 3, hiddenSize: 6, routerInitScale: 4, secondExpertPolicy: 'all', capacityFactor: 0.75, seed: 21 });
    expectRouterGradientMatchesDifferences(layer, layer.gshardRouter.weights);
    layer.dispose();
  });

  it('repeats losses for the same seed and keeps tensors flat', () => {
    const run = () =>
      trainFourSteps(
        () => createGShardLayer({ dModel: 4, numExperts: 4, hiddenSize: 8, seed: 'same' }),
        (step) => ({ training: true, rng: new Rng(`step-${step}`) }),
      );
    const first = run();
    expect(run()).toEqual(first);
    expect(first.every(Number.isFinite)).toBe(true);
  });
});

describe('GShard options', () => {
  it('fills in the documented defaults', () => {
    expect(resolveGShardOptions({ dModel: 8 })).toMatchObject({
      numExperts: 8, hiddenSize: 32, secondExpertPolicy: 'sampling', evalSecondExpertPolicy: 'all', normalizeGates: 'after-capacity',
      capacityFactor: 1, evalCapacityTokenFraction: 0.25, balanceLossWeight: 0.01, zLossWeight: 0,
      routerInitScale: 1, expertInitScale: 1, activation: 'gelu', seed: 0,
    });
  });

  it('rejects invalid options by field and value', () => {
    expect(() => resolveGShardOptions({ dModel: 4, numExperts: 1 })).toThrow('GShard: numExperts must be an integer >= 2, received 1');
    expect(() => resolveGShardOptions({ dModel: 4, secondExpertPolicy: 'top' as never })).toThrow(
      'GShard: secondExpertPolicy must be one of "sampling", "random", "all", received "top"',
    );
    expect(() => resolveGShardOptions({ dModel: 4, capacityFactor: Number.POSITIVE_INFINITY })).toThrow(
      'GShard: capacityFactor must be a finite number, received Infinity',
    );
    expect(() => resolveGShardOptions({ dModel: 4, evalCapacityTokenFraction: 2 })).toThrow(
      'GShard: evalCapacityTokenFraction must be a finite number <= 1, received 2',
    );
    expect(() => resolveGShardOptions({ dModel: 4, normalizeGates: 'never' as never })).toThrow(
      'GShard: normalizeGates must be one of "after-capacity", "before-capacity", received "never"',
    );
    expect(() => resolveGShardOptions(null as never)).toThrow('GShard: options must be an object with at least dModel, received null');
    expect(() => resolveGShardOptions({ dModel: 4, policy: 'random' } as never)).toThrow('GShard: unknown option "policy"; the options are');
    expect(() => resolveGShardOptions({ dModel: 4, seed: {} as never })).toThrow(
      'GShard: seed must be a finite number or a string, received [object Object]',
    );
  });

  it('counts two active experts per token', async () => {
    await initBackend('cpu');
    const layer = createGShardLayer({ dModel: 4, numExperts: 3, hiddenSize: 8 });
    const perExpert = 2 * 4 * 8 + 8 + 4;
    expect(layer.parameterCount()).toEqual({ total: 12 + 3 * perExpert, activePerToken: 12 + 2 * perExpert });
    expect(layer.flopsPerToken()).toBe(2 * 12 + 2 * 4 * 4 * 8);
    layer.dispose();
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(4);
  });
});

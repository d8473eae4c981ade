import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { denseFeedForward, expectGatherMatchesReference, expectRouterGradientMatchesDifferences, maxAbsDiff, trainFourSteps, values } from '../../moe/test/reference.js';
import { createSwitchLayer, jitterNoise, resolveSwitchOptions, switchRoute, type SwitchRouteOptions } from '../src/index.js';

const noJitter: SwitchRouteOptions = { capacityFactor: 1, jitterEps: 0, balanceLossWeight: 0.01, zLossWeight: 0 };

function softmaxRow(logits: number[]): number[] {
  const exps = logits.map(Math.exp);
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / total);
}

describe.each(['cpu', 'wasm'] as const)('Switch on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('routes a hand-computed plan', () => {
    tf.tidy(() => {
      // Wr maps [a, b] to logits [a, b, -a].
      const weights = tf.tensor2d([[1, 0, -1], [0, 1, 0]]);
      const features = tf.tensor2d([[2, 0], [0, 1], [1, 0], [3, 0]]);
      const plan = switchRoute(features, weights, noJitter, { training: true });

      // C = ceil(4 / 3) = 2: expert 0 takes tokens 0 and 2, token 3 is dropped.
      expect(plan.capacity).toBe(2);
      expect(Array.from(plan.experts)).toEqual([0, 1, 0, 0]);
      expect(Array.from(plan.slots)).toEqual([0, 0, 1, -1]);
      const expected = [softmaxRow([2, 0, -2])[0], softmaxRow([0, 1, 0])[1], softmaxRow([1, 0, -1])[0], softmaxRow([3, 0, -3])[0]];
      values(plan.gates).forEach((gate, index) => expect(gate).toBeCloseTo(expected[index], 6));

      // Balance loss by hand: f = [3/4, 1/4, 0], P = mean of the four probability rows.
      const rows = [[2, 0, -2], [0, 1, 0], [1, 0, -1], [3, 0, -3]].map(softmaxRow);
      const meanProbs = [0, 1, 2].map((e) => rows.reduce((sum, row) => sum + row[e], 0) / 4);
      const balance = 0.01 * 3 * (0.75 * meanProbs[0] + 0.25 * meanProbs[1]);
      expect(plan.losses.balance.dataSync()[0]).toBeCloseTo(balance, 7);
      expect(plan.losses.z).toBeUndefined();
    });
  });

  it('gives a balance loss of alpha under uniform routing', () => {
    tf.tidy(() => {
      // A zero router gives uniform probabilities, so sum_i f_i P_i = 1 / E whatever f is.
      const plan = switchRoute(new Rng(1).normalTensor([16, 4]) as tf.Tensor2D, tf.zeros([4, 8]), noJitter, { training: true });
      expect(plan.losses.balance.dataSync()[0]).toBeCloseTo(0.01, 7);
      // Ties go to the lowest index, so every token picks expert 0 and the rest are dropped past C = 2.
      expect(new Set(plan.experts)).toEqual(new Set([0]));
      expect(Array.from(plan.slots).filter((slot) => slot >= 0)).toEqual([0, 1]);
    });
  });

  it('passes a finite non-zero balance gradient to a zero router', () => {
    tf.tidy(() => {
      const features = new Rng(2).normalTensor([16, 4]) as tf.Tensor2D;
      const router = tf.zeros([4, 8]) as tf.Tensor2D;
      const gradient = tf.grad((w: tf.Tensor) => switchRoute(features, w as tf.Tensor2D, noJitter, { training: true }).losses.balance)(router);
      const gradientValues = values(gradient);
      expect(gradientValues.every(Number.isFinite)).toBe(true);
      expect(Math.max(...gradientValues.map(Math.abs))).toBeGreaterThan(1e-6);
    });
  });

  it('gives the router a gradient at perfectly balanced load', () => {
    tf.tidy(() => {
      // Token t has feature e_t and Wr = I, so token t goes to expert t: f is uniform.
      const features = tf.eye(4) as tf.Tensor2D;
      const router = tf.mul(tf.eye(4), 2) as tf.Tensor2D;
      const plan = switchRoute(features, router, noJitter, { training: true });
      expect(Array.from(plan.experts)).toEqual([0, 1, 2, 3]);

      // With uniform f the balance loss is alpha x sum_i P_i = alpha, a constant: its gradient is zero.
      const balanceGradient = tf.grad((w: tf.Tensor) => switchRoute(features, w as tf.Tensor2D, noJitter, { training: true }).losses.balance)(router);
      expect(Math.max(...values(balanceGradient).map(Math.abs))).toBeLessThan(1e-9);

      // The router still learns through the gates: a loss on the gated output has a finite non-zero gradient.
      const taskGradient = tf.grad((w: tf.Tensor) => {
        const routed = switchRoute(features, w as tf.Tensor2D, noJitter, { training: true });
        return tf.add(tf.sum(tf.mul(routed.gates, tf.tensor2d([[1], [2], [3], [4]]))), routed.losses.balance) as tf.Scalar;
      })(router);
      const taskValues = values(taskGradient);
      expect(taskValues.every(Number.isFinite)).toBe(true);
      expect(Math.max(...taskValues.map(Math.abs))).toBeGreaterThan(1e-3);
    });
  });

  it('adds the z-loss when its weight is positive', () => {
    tf.tidy(() => {
      const weights = tf.tensor2d([[1, 0], [0, 1]]);
      const features = tf.tensor2d([[0, 0], [Math.log(3), 0]]);
      const plan = switchRoute(features, weights, { ...noJitter, zLossWeight: 0.5 }, { training: false });
      // logsumexp per token: log 2 and log 4.
      expect(plan.losses.z.dataSync()[0]).toBeCloseTo(0.5 * ((Math.log(2) ** 2 + Math.log(4) ** 2) / 2), 6);
    });
  });

  it('jitters the router input in training only', () => {
    tf.tidy(() => {
      const features = new Rng(3).normalTensor([8, 4]) as tf.Tensor2D;
      const weights = new Rng(4).normalTensor([4, 3]) as tf.Tensor2D;
      const options = { ...noJitter, jitterEps: 0.1 };
      const clean = values(switchRoute(features, weights, noJitter, { training: true }).gates);
      const first = values(switchRoute(features, weights, options, { training: true, rng: new Rng(5) }).gates);
      const again = values(switchRoute(features, weights, options, { training: true, rng: new Rng(5) }).gates);
      const evaluation = values(switchRoute(features, weights, options, { training: false, rng: new Rng(5) }).gates);
      expect(first).toEqual(again);
      expect(first).not.toEqual(clean);
      expect(evaluation).toEqual(clean);
      expect(() => switchRoute(features, weights, options, { training: true })).toThrow('switchRoute: context.rng is missing');
    });
  });

  it('computes jitter as x times uniform noise', () => {
    tf.tidy(() => {
      const noise = jitterNoise(new Rng(6), 10_001, 0.01);
      expect(Math.min(...noise)).toBeGreaterThanOrEqual(0.99);
      expect(Math.max(...noise)).toBeLessThan(1.01);
      expect(Math.abs(noise.reduce((a, b) => a + b, 0) / noise.length - 1)).toBeLessThan(2e-4);
      expect(Array.from(jitterNoise(new Rng(6), 10_001, 0.01))).toEqual(Array.from(noise));

      // The plan's gates are the softmax of (x * noise) Wr, with the noise drawn from the step's rng.
      const features = new Rng(7).normalTensor([6, 4]) as tf.Tensor2D;
      const weights = new Rng(8).normalTensor([4, 3]) as tf.Tensor2D;
      const options = { ...noJitter, capacityFactor: 0, jitterEps: 0.2 };
      const plan = switchRoute(features, weights, options, { training: true, rng: new Rng(9) });
      const jittered = tf.mul(features, tf.tensor2d(jitterNoise(new Rng(9), 24, 0.2), [6, 4]));
      const probs = tf.softmax(tf.matMul(jittered, weights));
      const expected = tf.max(probs, 1);
      expect(maxAbsDiff(tf.reshape(plan.gates, [6]), expected)).toBeLessThan(1e-6);
    });
  });

  it('uses capacity factor 1 in training and 2 in evaluation', () => {
    const layer = createSwitchLayer({ dModel: 4, numExperts: 4, hiddenSize: 8, jitterEps: 0 });
    tf.tidy(() => {
      const features = new Rng(6).normalTensor([16, 4]) as tf.Tensor2D;
      expect(layer.router.route(features, { training: true }).capacity).toBe(4);
      expect(layer.router.route(features, { training: false }).capacity).toBe(8);
    });
    layer.dispose();
  });

  it('leaves dropped tokens at exactly zero output', () => {
    const layer = createSwitchLayer({ dModel: 4, numExperts: 2, hiddenSize: 8, jitterEps: 0 });
    // A router that sends every token to expert 1: C = ceil(6 / 2) = 3, so tokens 3-5 are dropped.
    tf.tidy(() => layer.switchRouter.weights.assign(tf.tensor2d([[0, 1], [0, 1], [0, 1], [0, 1]])));
    tf.tidy(() => {
      const input = tf.add(tf.abs(new Rng(7).normalTensor([6, 4])), 0.1);
      const { output, stats } = layer.apply(input, { training: true });
      const rows = values(output);
      expect(rows.slice(12)).toEqual(new Array(12).fill(0));
      expect(rows.slice(0, 12).some((value) => value !== 0)).toBe(true);
      expect(stats.droppedFraction).toBe(0.5);
      expect(stats.tokensPerExpert).toEqual([0, 6]);
      expect(stats.keptPerExpert).toEqual([0, 3]);
      expect(stats.idleExperts).toBe(1);
    });
    layer.dispose();
  });

  it('matches the one-hot reference in outputs and gradients', () => {
    const layer = createSwitchLayer({ dModel: 4, numExperts: 3, hiddenSize: 6, capacityFactor: 0.75, routerInitScale: 4, seed: 9 });
    const input = new Rng(10).normalTensor([12, 4]) as tf.Tensor2D;
    expectGatherMatchesReference(layer, input, () => ({ training: true, rng: new Rng(11) }));
    input.dispose();
    layer.dispose();
  });

  it('matches finite differences in the router gradient', () => {
    // Checks the router gradient independently of the gate code: central differences of the layer loss.
    const layer = createSwitchLayer({ dModel: 4, numExperts: 3, hiddenSize: 6, routerInitScale: 4, jitterEps: 0, capacityFactor: 0, seed: 21 });
    expectRouterGradientMatchesDifferences(layer, layer.switchRouter.weights);
    layer.dispose();
  });

  it('equals a dense FFN with one expert', () => {
    const layer = createSwitchLayer({ dModel: 4, numExperts: 1, hiddenSize: 8, seed: 12 });
    layer.bank.b1.assign(new Rng(13).normalTensor([1, 8]) as tf.Tensor2D);
    layer.bank.b2.assign(new Rng(14).normalTensor([1, 4]) as tf.Tensor2D);
    tf.tidy(() => {
      const input = new Rng(15).normalTensor([3, 5, 4]);
      const { output, stats } = layer.apply(input, { training: true, rng: new Rng(16) });
      const { w1, b1, w2, b2 } = layer.bank;
      const dense = denseFeedForward(tf.reshape(input, [15, 4]) as tf.Tensor2D, tf.squeeze(w1, [0]), tf.squeeze(b1, [0]), tf.squeeze(w2, [0]), tf.squeeze(b2, [0]));
      expect(maxAbsDiff(tf.reshape(output, [15, 4]), dense)).toBeLessThan(1e-5);
      expect(stats.droppedFraction).toBe(0);
    });
    layer.dispose();
  });

  it('repeats losses for the same seed and keeps tensors flat', () => {
    const run = () =>
      trainFourSteps(
        () => createSwitchLayer({ dModel: 4, numExperts: 4, hiddenSize: 8, seed: 'same', zLossWeight: 0.001 }),
        (step) => ({ training: true, rng: new Rng(`step-${step}`) }),
      );
    const first = run();
    expect(run()).toEqual(first);
    expect(first.every(Number.isFinite)).toBe(true);
  });
});

describe('Switch options', () => {
  it('rejects bad layer inputs before routing', async () => {
    await initBackend('cpu');
    const layer = createSwitchLayer({ dModel: 4, numExperts: 2 });
    const before = tf.memory().numTensors;
    const [narrow, ints, empty, good] = [tf.zeros([2, 5]), tf.zeros([2, 4], 'int32'), tf.zeros([0, 4]), tf.zeros([2, 4])];
    expect(() => layer.apply(narrow, { training: false })).toThrow(
      'MoeFeedForward.apply: input must have shape [..., 4] with at least one token, received [2, 5]',
    );
    expect(() => layer.apply(ints, { training: false })).toThrow('MoeFeedForward.apply: input must be float32, received int32');
    expect(() => layer.apply(empty, { training: false })).toThrow('with at least one token, received [0, 4]');
    expect(() => layer.apply(good, undefined as never)).toThrow(
      'MoeFeedForward.apply: context must be an object with a boolean training field, received undefined',
    );
    tf.dispose([narrow, ints, empty, good]);
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
  });

  it('fills in the documented defaults', () => {
    const resolved = resolveSwitchOptions({ dModel: 16 });
    expect(resolved).toMatchObject({
      numExperts: 8, hiddenSize: 64, capacityFactor: 1, evalCapacityFactor: 2, jitterEps: 0.01,
      balanceLossWeight: 0.01, zLossWeight: 0, routerInitScale: 0.1, expertInitScale: 1, activation: 'gelu', seed: 0,
    });
  });

  it('rejects invalid options by field and value', () => {
    expect(() => resolveSwitchOptions({ dModel: 4, numExperts: 0 })).toThrow('Switch: numExperts must be an integer >= 1, received 0');
    expect(() => resolveSwitchOptions({ dModel: 4, numExperts: -2 })).toThrow('Switch: numExperts must be an integer >= 1, received -2');
    expect(() => resolveSwitchOptions({ dModel: 4, capacityFactor: 'big' as never })).toThrow(
      'Switch: capacityFactor must be a finite number, received "big"',
    );
    expect(() => resolveSwitchOptions({ dModel: 4, jitterEps: 1.5 })).toThrow('Switch: jitterEps must be a finite number in [0, 0.999999], received 1.5');
    expect(() => resolveSwitchOptions({ dModel: 4, balanceLossWeight: -0.1 })).toThrow(
      'Switch: balanceLossWeight must be a finite number >= 0, received -0.1',
    );
    expect(() => resolveSwitchOptions({ dModel: 4, numExperts: Number.NaN })).toThrow('Switch: numExperts must be an integer >= 1, received NaN');
    expect(() => resolveSwitchOptions({ dModel: 3.5 })).toThrow('Switch: dModel must be an integer >= 1, received 3.5');
    expect(() => resolveSwitchOptions(undefined as never)).toThrow('Switch: options must be an object with at least dModel, received undefined');
    expect(() => resolveSwitchOptions({ dModel: 4, numExpert: 4 } as never)).toThrow(
      'Switch: unknown option "numExpert"; the options are dModel, numExperts, hiddenSize,',
    );
    expect(() => resolveSwitchOptions({ dModel: 4, seed: Number.NaN })).toThrow('Switch: seed must be a finite number or a string, received NaN');
    expect(() => resolveSwitchOptions({ dModel: 4, name: '' })).toThrow('Switch: name must be a non-empty string when given, received ""');
  });

  it('counts parameters and active FLOPs', async () => {
    await initBackend('cpu');
    const layer = createSwitchLayer({ dModel: 4, numExperts: 3, hiddenSize: 8 });
    const perExpert = 2 * 4 * 8 + 8 + 4;
    expect(layer.parameterCount()).toEqual({ total: 12 + 3 * perExpert, activePerToken: 12 + perExpert });
    expect(layer.flopsPerToken()).toBe(2 * 12 + 4 * 4 * 8);
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

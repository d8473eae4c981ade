import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import {
  assignSlots,
  balanceLoss,
  combine,
  computeCapacity,
  computeRoutingStats,
  dispatch,
  ExpertBank,
  MoeFeedForward,
  zLoss,
  type RoutingPlan,
} from '../src/index.js';
import { denseFeedForward, maxAbsDiff, naiveCombine, naiveDispatch, values } from './reference.js';
import { TopKTestRouter } from './test-router.js';

function planOf(partial: Omit<RoutingPlan, 'gates' | 'losses'> & { gates: number[][] }): RoutingPlan {
  return { ...partial, gates: tf.tensor2d(partial.gates), losses: {} };
}

describe('computeCapacity', () => {
  it('rounds k S / E x factor up', () => {
    expect(computeCapacity({ tokens: 10, numExperts: 4, k: 1, capacityFactor: 1 })).toBe(3);
    expect(computeCapacity({ tokens: 10, numExperts: 4, k: 1, capacityFactor: 1.25 })).toBe(4);
    expect(computeCapacity({ tokens: 10, numExperts: 4, k: 2, capacityFactor: 1 })).toBe(5);
  });

  it('clamps to at least one slot', () => {
    expect(computeCapacity({ tokens: 2, numExperts: 8, k: 1, capacityFactor: 1 })).toBe(1);
    expect(computeCapacity({ tokens: 1, numExperts: 64, k: 1, capacityFactor: 0.01 })).toBe(1);
  });

  it('clamps to at most the token count', () => {
    expect(computeCapacity({ tokens: 4, numExperts: 2, k: 1, capacityFactor: 100 })).toBe(4);
  });

  it('drops nothing for a factor <= 0', () => {
    expect(computeCapacity({ tokens: 7, numExperts: 3, k: 1, capacityFactor: 0 })).toBe(7);
    expect(computeCapacity({ tokens: 7, numExperts: 3, k: 2, capacityFactor: -1 })).toBe(7);
  });

  it('rejects invalid inputs by name and value', () => {
    expect(() => computeCapacity({ tokens: 4, numExperts: 2, k: 1, capacityFactor: Number.NaN })).toThrow(
      'computeCapacity: capacityFactor must be a finite number, received NaN',
    );
    expect(() => computeCapacity({ tokens: 4, numExperts: 0, k: 1, capacityFactor: 1 })).toThrow(
      'computeCapacity: numExperts must be an integer >= 1, received 0',
    );
  });
});

describe('assignSlots', () => {
  it('counts slots in token order and drops past capacity', () => {
    const slots = assignSlots(Int32Array.from([0, 1, 0, 0, 1]), 1, 2, 2);
    expect(Array.from(slots)).toEqual([0, 0, 1, -1, 1]);
  });

  it('gives first choices slots before second choices', () => {
    // Tokens (first, second): (0, 1), (1, 0), (0, 2), (0, 1); capacity 3.
    const slots = assignSlots(Int32Array.from([0, 1, 1, 0, 0, 2, 0, 1]), 2, 3, 3);
    // Expert 0 gets the first choices of tokens 0, 2, 3 (slots 0-2), so token 1's second choice is dropped.
    expect(Array.from(slots)).toEqual([0, 1, 0, -1, 1, 0, 2, 2]);
  });

  it('skips "no choice" entries without using a slot', () => {
    const slots = assignSlots(Int32Array.from([0, -1, 1, 0]), 2, 2, 3);
    expect(Array.from(slots)).toEqual([0, -1, 0, 1]);
  });

  it('rejects an expert index out of range', () => {
    expect(() => assignSlots(Int32Array.from([0, 2]), 1, 2, 2)).toThrow('assignSlots: expert index at 1 must be in [-1, 2), received 2');
  });
});

describe.each(['cpu', 'wasm'] as const)('moe machinery on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('dispatches tokens into their expert slots', () => {
    tf.tidy(() => {
      const features = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
      const plan = planOf({
        numExperts: 2, k: 1, capacity: 2,
        experts: Int32Array.from([1, 0, 1]), slots: Int32Array.from([0, 0, 1]), gates: [[1], [1], [1]],
      });
      const buffer = dispatch(features, plan);
      expect(buffer.shape).toEqual([2, 2, 2]);
      expect(values(buffer)).toEqual([3, 4, 0, 0, 1, 2, 5, 6]);
    });
  });

  it('combines gate-weighted outputs and sums two choices', () => {
    tf.tidy(() => {
      // Expert outputs: expert 0 slot 0 = [1, 1], slot 1 = [2, 2]; expert 1 slot 0 = [10, 20], slot 1 = [30, 40].
      const outputs = tf.tensor3d([[[1, 1], [2, 2]], [[10, 20], [30, 40]]]);
      const plan = planOf({
        numExperts: 2, k: 2, capacity: 2,
        experts: Int32Array.from([0, 1, 1, 0]), slots: Int32Array.from([0, 0, 1, 1]), gates: [[0.75, 0.25], [0.5, 0.5]],
      });
      const combined = combine(outputs, plan);
      expect(values(combined)).toEqual([0.75 * 1 + 0.25 * 10, 0.75 * 1 + 0.25 * 20, 0.5 * 30 + 0.5 * 2, 0.5 * 40 + 0.5 * 2]);
    });
  });

  it('leaves dropped tokens at exactly zero', () => {
    tf.tidy(() => {
      const outputs = tf.tensor3d([[[1, 1]], [[2, 2]]]);
      const plan = planOf({
        numExperts: 2, k: 1, capacity: 1,
        experts: Int32Array.from([0, 0, 1]), slots: Int32Array.from([0, -1, 0]), gates: [[1], [Number.NaN], [3]],
      });
      expect(values(combine(outputs, plan))).toEqual([1, 1, 0, 0, 6, 6]);
    });
  });

  it('keeps a dropped second choice at zero', () => {
    tf.tidy(() => {
      // Expert 0 slots: [1, 2], [3, 4]; expert 1 slots: [10, 20], [30, 40].
      const outputs = tf.tensor3d([[[1, 2], [3, 4]], [[10, 20], [30, 40]]]);
      // Token 0 keeps both choices; token 1 keeps its first and loses its second, whose gate is NaN.
      const plan = planOf({
        numExperts: 2, k: 2, capacity: 2,
        experts: Int32Array.from([0, 1, 1, 0]), slots: Int32Array.from([0, 0, 1, -1]), gates: [[0.5, 0.25], [2, Number.NaN]],
      });
      expect(values(combine(outputs, plan))).toEqual([0.5 * 1 + 0.25 * 10, 0.5 * 2 + 0.25 * 20, 2 * 30, 2 * 40]);
      const gateGradient = tf.grad((gates: tf.Tensor) => tf.sum(combine(outputs, { ...plan, gates: gates as tf.Tensor2D })))(plan.gates);
      expect(values(gateGradient)).toEqual([3, 30, 70, 0]);
    });
  });

  it('rejects a plan whose slots collide', () => {
    tf.tidy(() => {
      const plan = planOf({
        numExperts: 1, k: 1, capacity: 1, experts: Int32Array.from([0, 0]), slots: Int32Array.from([0, 0]), gates: [[1], [1]],
      });
      expect(() => dispatch(tf.zeros([2, 3]) as tf.Tensor2D, plan)).toThrow('dispatch: expert 0 slot 0 is claimed by two choices');
    });
  });

  for (const [k, capacityFactor] of [[1, 0.75], [2, 0.6], [2, 0]] as const) {
    it(`matches the one-hot reference in outputs and gradients (k=${k}, factor ${capacityFactor})`, () => {
      const [tokens, dModel, numExperts] = [12, 4, 3];
      const router = new TopKTestRouter(dModel, numExperts, k, capacityFactor);
      const bank = new ExpertBank({ numExperts, dModel, hiddenSize: 5, rng: 2 });
      const input = new Rng(3).normalTensor([tokens, dModel]) as tf.Tensor2D;
      const variables = [...router.trainableVariables, ...bank.trainableVariables];

      let dropped = 0;
      const lossOf = (fast: boolean) => () =>
        tf.tidy(() => {
          const plan = router.route(input, { training: true });
          dropped = Array.from(plan.slots).filter((slot) => slot < 0).length;
          const buffer = fast ? dispatch(input, plan) : naiveDispatch(input, plan);
          const outputs = bank.apply(buffer);
          const combined = fast ? combine(outputs, plan) : naiveCombine(outputs, plan);
          // Weighted sum so that every output element has its own gradient.
          const weights = tf.reshape(tf.range(1, tokens * dModel + 1), [tokens, dModel]);
          return tf.sum(tf.mul(tf.mul(combined, combined), weights)) as tf.Scalar;
        });
      const fast = tf.variableGrads(lossOf(true), variables);
      const naive = tf.variableGrads(lossOf(false), variables);

      if (capacityFactor > 0) expect(dropped).toBeGreaterThan(0);
      else expect(dropped).toBe(0);
      expect(fast.value.dataSync()[0]).toBeCloseTo(naive.value.dataSync()[0], 3);
      for (const variable of variables) {
        const gradient = fast.grads[variable.name];
        const reference = naive.grads[variable.name];
        const scale = Math.max(1, tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0]));
        expect(maxAbsDiff(gradient, reference) / scale, variable.name).toBeLessThan(1e-5);
        expect(tf.tidy(() => tf.max(tf.abs(gradient)).dataSync()[0]), variable.name).toBeGreaterThan(0);
      }
      tf.dispose([fast.value, naive.value, ...Object.values(fast.grads), ...Object.values(naive.grads), input]);
      router.weights.dispose();
      bank.dispose();
    });
  }

  it('equals a dense FFN with one expert and no dropping', () => {
    const dModel = 6;
    const router = new TopKTestRouter(dModel, 1, 1, 0);
    const bank = new ExpertBank({ numExperts: 1, dModel, hiddenSize: 8, rng: 4 });
    // Give the biases non-zero values so they are compared too.
    bank.b1.assign(new Rng(5).normalTensor([1, 8]) as tf.Tensor2D);
    bank.b2.assign(new Rng(6).normalTensor([1, dModel]) as tf.Tensor2D);
    const layer = new MoeFeedForward({ router, bank });
    tf.tidy(() => {
      const input = new Rng(7).normalTensor([2, 5, dModel]);
      const { output, auxLoss, stats } = layer.apply(input, { training: true });
      const dense = denseFeedForward(
        tf.reshape(input, [10, dModel]) as tf.Tensor2D,
        tf.squeeze(bank.w1, [0]), tf.squeeze(bank.b1, [0]), tf.squeeze(bank.w2, [0]), tf.squeeze(bank.b2, [0]),
      );
      expect(output.shape).toEqual([2, 5, dModel]);
      expect(maxAbsDiff(tf.reshape(output, [10, dModel]), dense)).toBeLessThan(1e-5);
      expect(auxLoss.dataSync()[0]).toBe(0);
      expect(stats.droppedFraction).toBe(0);
      expect(stats.tokensPerExpert).toEqual([10]);
    });
    layer.dispose();
  });

  it('keeps the tensor count flat over training steps', () => {
    const router = new TopKTestRouter(4, 3, 2, 1);
    const bank = new ExpertBank({ numExperts: 3, dModel: 4, hiddenSize: 6 });
    const layer = new MoeFeedForward({ router, bank });
    const input = new Rng(8).normalTensor([9, 4]);
    const optimizer = tf.train.sgd(0.1);
    const step = () => {
      const cost = optimizer.minimize(() => {
        const { output, auxLoss } = layer.apply(input, { training: true });
        return tf.add(tf.mean(tf.square(output)), auxLoss) as tf.Scalar;
      }, true, layer.trainableVariables);
      cost?.dispose();
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    input.dispose();
    layer.dispose();
  });

  it('computes the balance loss: alpha when uniform, a hand value when skewed', () => {
    tf.tidy(() => {
      const uniform = tf.fill([8, 4], 0.25) as tf.Tensor2D;
      expect(balanceLoss(uniform, Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), 0.01).dataSync()[0]).toBeCloseTo(0.01, 7);

      // f = [0.75, 0.25], P = [0.65, 0.35]: 0.01 x 2 x (0.75 x 0.65 + 0.25 x 0.35) = 0.0115.
      const skewed = tf.tensor2d([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]]);
      const firstChoice = Int32Array.from([0, 0, 0, 1]);
      expect(balanceLoss(skewed, firstChoice, 0.01).dataSync()[0]).toBeCloseTo(0.0115, 7);

      // d loss / d probs[s, i] = alpha E f_i / S.
      const gradient = tf.grad((p: tf.Tensor) => balanceLoss(p as tf.Tensor2D, firstChoice, 0.01))(skewed);
      const expected = [0.01 * 2 * 0.75 / 4, 0.01 * 2 * 0.25 / 4];
      values(gradient).forEach((g, index) => expect(g).toBeCloseTo(expected[index % 2], 8));
    });
  });

  it('computes the z-loss as the mean squared logsumexp', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([[0, 0], [Math.log(3), 0]]);
      const expected = 0.5 * ((Math.log(2) ** 2 + Math.log(4) ** 2) / 2);
      expect(zLoss(logits, 0.5).dataSync()[0]).toBeCloseTo(expected, 6);
    });
  });
});

describe('computeRoutingStats', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('counts load, drops, idle experts and entropy', () => {
    tf.tidy(() => {
      const plan = planOf({
        numExperts: 3, k: 1, capacity: 2,
        experts: Int32Array.from([0, 0, 0, 1]), slots: Int32Array.from([0, 1, -1, 0]), gates: [[1], [1], [1], [1]],
      });
      const probs = tf.tensor2d([[0.5, 0.5, 0], [1, 0, 0], [1, 0, 0], [0.25, 0.25, 0.5]]);
      const stats = computeRoutingStats(plan, probs);
      expect(stats.tokensPerExpert).toEqual([3, 1, 0]);
      expect(stats.keptPerExpert).toEqual([2, 1, 0]);
      expect(stats.droppedFraction).toBe(0.25);
      expect(stats.idleExperts).toBe(1);
      expect(stats.maxOverMeanLoad).toBeCloseTo(3 / (4 / 3), 10);
      expect(stats.routerEntropy).toBeCloseTo((Math.log(2) + 1.5 * Math.log(2)) / 4, 6);
    });
  });
});

describe('ExpertBank', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('draws the same weights for the same seed', () => {
    const a = new ExpertBank({ numExperts: 2, dModel: 3, hiddenSize: 4, rng: 11 });
    const b = new ExpertBank({ numExperts: 2, dModel: 3, hiddenSize: 4, rng: 11 });
    expect(values(a.w1)).toEqual(values(b.w1));
    expect(values(a.w2)).toEqual(values(b.w2));
    a.dispose();
    b.dispose();
  });

  it('rejects invalid options by field and value', () => {
    expect(() => new ExpertBank({ numExperts: 0, dModel: 4 })).toThrow('ExpertBank: numExperts must be an integer >= 1, received 0');
    expect(() => new ExpertBank({ numExperts: 2, dModel: 4, activation: 'tanh' as never })).toThrow(
      'ExpertBank: activation must be one of "gelu", "relu", received "tanh"',
    );
  });

  it('counts parameters and active FLOPs', () => {
    const router = new TopKTestRouter(4, 3, 2, 1);
    const layer = new MoeFeedForward({ router, bank: new ExpertBank({ numExperts: 3, dModel: 4, hiddenSize: 6 }) });
    const perExpert = 2 * 4 * 6 + 6 + 4;
    expect(layer.parameterCount()).toEqual({ total: 12 + 3 * perExpert, activePerToken: 12 + 2 * perExpert });
    expect(layer.flopsPerToken()).toBe(2 * 12 + 2 * 4 * 4 * 6);
    layer.dispose();
  });
});



describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(6);
  });
});

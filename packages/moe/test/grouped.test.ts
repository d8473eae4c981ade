import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import {
  applyExpertsPerGroup,
  combine,
  dispatch,
  ExpertBank,
  expertRowsPerToken,
  groupByExpert,
  isDroplessPlan,
  MoeFeedForward,
  type Router,
  type RouterContext,
  type RoutingPlan,
} from '../src/index.js';
import { maxAbsDiff } from './reference.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/** A plan from plain arrays; the gates become a [S, k] tensor. */
function planOf(fields: Omit<RoutingPlan, 'gates' | 'losses'>, gates: number[]): RoutingPlan {
  const tokens = fields.experts.length / fields.k;
  return { ...fields, gates: tf.tensor2d(gates, [tokens, fields.k]), losses: {} };
}

/** A router that returns a fixed plan whatever the features, with gates tied to a variable so they get gradients. */
class FixedPlanRouter implements Router {
  readonly name = 'fixed-plan';
  readonly gateLogits: tf.Variable;

  constructor(
    readonly k: number,
    readonly numExperts: number,
    readonly capacity: number,
    readonly experts: Int32Array,
    readonly slots: Int32Array,
    readonly dropless: boolean,
  ) {
    this.gateLogits = tf.variable(new Rng(5).normalTensor([experts.length / k, k], 0, 1), true);
  }

  get trainableVariables(): tf.Variable[] {
    return [this.gateLogits];
  }

  /** A fixed plan runs no product. */
  flopsPerToken(): number {
    return 0;
  }

  route(_features: tf.Tensor2D, _context: RouterContext): RoutingPlan {
    const gates = tf.sigmoid(this.gateLogits) as tf.Tensor2D;
    const { numExperts, k, capacity, experts, slots, dropless } = this;
    return { numExperts, k, capacity, dropless, experts, slots, gates, losses: {} };
  }
}

/** Experts of each token for a skewed load: most tokens on expert 0. */
function skewedExperts(tokens: number, numExperts: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: tokens }, () => (rng.next() < 0.7 ? 0 : 1 + rng.int(numExperts - 1)));
}

/** Running count per expert in token order, as assignSlots gives with no capacity limit. */
function droplessSlots(experts: Int32Array, numExperts: number): Int32Array {
  const counts = new Int32Array(numExperts);
  return Int32Array.from(experts, (expert) => (expert < 0 ? -1 : counts[expert]++));
}

/** Multiply-adds of the matrix products `fn` runs, from the profiled kernel shapes. */
async function profiledMultiplyAdds(fn: () => tf.Tensor): Promise<number> {
  const profile = await tf.profile(() => fn());
  tf.dispose(profile.result as tf.Tensor);
  let total = 0;
  for (const kernel of profile.kernels) {
    if (kernel.name !== 'BatchMatMul' && kernel.name !== '_FusedMatMul') continue;
    const [a] = kernel.inputShapes;
    const [out] = kernel.outputShapes;
    const inner = a[a.length - 1] === out[out.length - 2] ? a[a.length - 2] : a[a.length - 1];
    total += out.reduce((product, size) => product * size, 1) * inner;
  }
  return total;
}

describe('groupByExpert', () => {
  it('orders kept choices by expert, then slot', () => {
    // Tokens 0..3, k = 2. Choice 3 (token 1, second) was dropped; choice 6 (token 3, first) has no expert.
    const plan = planOf(
      {
        numExperts: 3,
        k: 2,
        capacity: 2,
        experts: Int32Array.from([2, 0, 0, 1, 2, 1, -1, 0]),
        slots: Int32Array.from([0, 0, 1, -1, 1, 0, -1, 2]),
      },
      [1, 1, 1, 1, 1, 1, 1, 1],
    );
    const groups = groupByExpert(plan);
    expect(Array.from(groups.counts)).toEqual([3, 1, 2]);
    expect(Array.from(groups.choices)).toEqual([1, 2, 7, 5, 0, 4]);
    expect(Array.from(groups.tokens)).toEqual([0, 1, 3, 2, 0, 2]);
    plan.gates.dispose();
  });

  it('rejects a dropped choice in a dropless plan', () => {
    const plan = planOf(
      { numExperts: 2, k: 1, capacity: 1, dropless: true, experts: Int32Array.from([0, 0]), slots: Int32Array.from([0, -1]) },
      [1, 1],
    );
    expect(() => groupByExpert(plan)).toThrow(/marked dropless, but choice 1 \(expert 0\) was dropped/);
    plan.gates.dispose();
  });

  it('rejects two choices in one slot', () => {
    const plan = planOf({ numExperts: 2, k: 1, capacity: 2, experts: Int32Array.from([1, 1]), slots: Int32Array.from([0, 0]) }, [1, 1]);
    expect(() => groupByExpert(plan)).toThrow(/choice 1 has slot 0 of expert 1/);
    plan.gates.dispose();
  });

  it('rejects an expert outside the bank', () => {
    const plan = planOf({ numExperts: 2, k: 1, capacity: 2, experts: Int32Array.from([0, 2]), slots: Int32Array.from([0, 0]) }, [1, 1]);
    expect(() => groupByExpert(plan)).toThrow(/choice 1 has expert 2, outside \[-1, 2\)/);
    plan.gates.dispose();
  });
});

describe('isDroplessPlan', () => {
  it('follows the flag and a capacity of at least S', () => {
    const base = { numExperts: 2, k: 1, experts: new Int32Array(4), slots: new Int32Array(4) };
    const gates = tf.ones([4, 1]) as tf.Tensor2D;
    expect(isDroplessPlan({ ...base, capacity: 3, gates, losses: {} }, 4)).toBe(false);
    expect(isDroplessPlan({ ...base, capacity: 3, dropless: true, gates, losses: {} }, 4)).toBe(true);
    expect(isDroplessPlan({ ...base, capacity: 4, gates, losses: {} }, 4)).toBe(true);
    gates.dispose();
  });
});

describe('expertRowsPerToken', () => {
  it('counts capacity factor x k rows while the capacity limits', () => {
    expect(expertRowsPerToken(1, 8, 1)).toBe(1);
    expect(expertRowsPerToken(1, 8, 1.25)).toBe(1.25);
    expect(expertRowsPerToken(1, 8, 0.5)).toBe(0.5);
    expect(expertRowsPerToken(2, 8, 2)).toBe(4);
  });

  it('counts k rows when nothing can be dropped', () => {
    expect(expertRowsPerToken(1, 8, 0)).toBe(1);
    expect(expertRowsPerToken(2, 8, -1)).toBe(2);
    // C = S once k x factor reaches E: the layer then runs the dropless path.
    expect(expertRowsPerToken(1, 2, 2)).toBe(1);
    expect(expertRowsPerToken(2, 4, 2)).toBe(2);
  });

  it('rejects a factor that is not a number', () => {
    expect(() => expertRowsPerToken(1, 4, Number.NaN)).toThrow(/capacityFactor must be a finite number, received NaN/);
  });
});

describe.each(['cpu', 'wasm'] as const)('applyExpertsPerGroup on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  const dModel = 5;
  const hiddenSize = 7;
  const numExperts = 4;
  const tokens = 24;

  /** A case: the router's choices and slots, the capacity and the dropless flag. */
  interface Case {
    name: string;
    k: number;
    experts: Int32Array;
    slots: Int32Array;
    capacity: number;
    dropless: boolean;
  }

  const skewed = skewedExperts(tokens, numExperts, 3);
  const droppedExperts = skewedExperts(tokens, numExperts, 4);
  const topTwo = Int32Array.from({ length: tokens * 2 }, (_, index) => {
    const token = Math.floor(index / 2);
    if (index % 2 === 0) return token % 3 === 0 ? 0 : token % numExperts;
    // Every fifth token makes no second choice, as GShard's random policy may.
    return token % 5 === 0 ? -1 : ((token % 3 === 0 ? 0 : token % numExperts) + 1) % numExperts;
  });
  const cappedSlots = (experts: Int32Array, capacity: number): Int32Array =>
    Int32Array.from(droplessSlots(experts, numExperts), (slot) => (slot >= capacity ? -1 : slot));

  const cases: Case[] = [
    { name: 'skewed top-1, dropless', k: 1, experts: skewed, slots: droplessSlots(skewed, numExperts), capacity: tokens, dropless: true },
    { name: 'top-1 with dropped choices', k: 1, experts: droppedExperts, slots: cappedSlots(droppedExperts, 6), capacity: 6, dropless: false },
    { name: 'top-2 with skipped second choices', k: 2, experts: topTwo, slots: droplessSlots(topTwo, numExperts), capacity: tokens, dropless: true },
  ];

  it.each(cases)('matches the buffer path for $name', ({ k, experts, slots, capacity, dropless }) => {
    const bank = new ExpertBank({ numExperts, dModel, hiddenSize, rng: 2 });
    const router = new FixedPlanRouter(k, numExperts, capacity, experts, slots, dropless);
    const features = tf.variable(new Rng(9).normalTensor([tokens, dModel], 0, 1), true);
    const variables = [features, router.gateLogits, ...bank.trainableVariables];
    const weights = tf.reshape(tf.range(1, tokens * dModel + 1), [tokens, dModel]);

    const lossOf = (grouped: boolean) => () =>
      tf.tidy(() => {
        const plan = router.route(features as tf.Tensor2D, { training: true });
        const output = grouped ? applyExpertsPerGroup(features as tf.Tensor2D, plan, bank) : combine(bank.apply(dispatch(features as tf.Tensor2D, plan)), plan);
        return tf.sum(tf.mul(tf.square(output), weights)) as tf.Scalar;
      });
    const before = tf.memory().numTensors;
    const grouped = tf.variableGrads(lossOf(true), variables);
    const buffered = tf.variableGrads(lossOf(false), variables);

    const groupedLoss = grouped.value.dataSync()[0];
    expect(Math.abs(groupedLoss - buffered.value.dataSync()[0]) / Math.abs(groupedLoss)).toBeLessThan(1e-5);
    for (const variable of variables) {
      const reference = buffered.grads[variable.name];
      const scale = Math.max(1, tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0]));
      expect(maxAbsDiff(grouped.grads[variable.name], reference) / scale, variable.name).toBeLessThan(1e-5);
    }
    tf.dispose([grouped.value, buffered.value, ...Object.values(grouped.grads), ...Object.values(buffered.grads)]);
    expect(tf.memory().numTensors).toBe(before);

    tf.dispose([features, weights, router.gateLogits]);
    bank.dispose();
  });

  it('passes no gradient to the gate of a dropped choice', () => {
    const bank = new ExpertBank({ numExperts: 2, dModel, hiddenSize, rng: 1 });
    const features = tf.tidy(() => new Rng(2).normalTensor([3, dModel], 0, 1)) as tf.Tensor2D;
    const experts = Int32Array.from([0, 0, 1]);
    const slots = Int32Array.from([0, -1, 0]);
    const gateValues = tf.tensor2d([0.5, Number.NaN, 0.25], [3, 1]);
    const { value, grads } = tf.valueAndGrads((gates: tf.Tensor) =>
      tf.sum(applyExpertsPerGroup(features, { numExperts: 2, k: 1, capacity: 1, experts, slots, gates: gates as tf.Tensor2D, losses: {} }, bank)),
    )([gateValues]);

    const output = tf.tidy(() =>
      applyExpertsPerGroup(features, { numExperts: 2, k: 1, capacity: 1, experts, slots, gates: gateValues, losses: {} }, bank),
    );
    expect(Array.from(output.dataSync().slice(dModel, 2 * dModel))).toEqual(new Array<number>(dModel).fill(0));
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(grads[0].dataSync()[1]).toBe(0);
    tf.dispose([features, gateValues, value, ...grads, output]);
    bank.dispose();
  });

  it('returns zeros when every choice was dropped', () => {
    const bank = new ExpertBank({ numExperts: 2, dModel, hiddenSize, rng: 1 });
    const features = tf.ones([2, dModel]) as tf.Tensor2D;
    const plan = planOf({ numExperts: 2, k: 1, capacity: 0, experts: Int32Array.from([0, 1]), slots: Int32Array.from([-1, -1]) }, [1, 1]);
    const output = applyExpertsPerGroup(features, plan, bank);
    expect(Array.from(output.dataSync())).toEqual(new Array<number>(2 * dModel).fill(0));
    tf.dispose([features, plan.gates, output]);
    bank.dispose();
  });
});

/** The layer's output for `input` in training; the auxiliary loss is released. */
function outputOf(layer: MoeFeedForward, input: tf.Tensor): tf.Tensor {
  const { output, auxLoss, losses } = layer.apply(input, { training: true });
  tf.dispose([auxLoss, ...Object.values(losses)]);
  return output;
}

describe('MoeFeedForward on a dropless plan', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('multiplies only the rows of routed tokens', async () => {
    const dModel = 6;
    const hiddenSize = 10;
    const numExperts = 4;
    const tokens = 32;
    const experts = skewedExperts(tokens, numExperts, 8);
    const loads = [0, 1, 2, 3].map((expert) => experts.filter((e) => e === expert).length);
    expect(Math.max(...loads)).toBeGreaterThan(tokens / 2);

    const buildLayer = (dropless: boolean): MoeFeedForward =>
      new MoeFeedForward({
        router: new FixedPlanRouter(1, numExperts, Math.max(...loads), experts, droplessSlots(experts, numExperts), dropless),
        bank: new ExpertBank({ numExperts, dModel, hiddenSize, rng: 4 }),
      });
    const input = tf.tidy(() => new Rng(1).normalTensor([tokens, dModel], 0, 1));

    const grouped = buildLayer(true);
    const groupedWork = await profiledMultiplyAdds(() => outputOf(grouped, input));
    expect(groupedWork).toBe(tokens * 2 * dModel * hiddenSize);
    expect(grouped.flopsPerToken()).toBe((2 * groupedWork) / tokens);

    // The same choices without the flag go through the buffer padded to the busiest expert.
    const buffered = buildLayer(false);
    const bufferedWork = await profiledMultiplyAdds(() => outputOf(buffered, input));
    expect(bufferedWork).toBe(numExperts * Math.max(...loads) * 2 * dModel * hiddenSize);

    const before = tf.memory().numTensors;
    const groupedOutput = outputOf(grouped, input);
    const bufferedOutput = outputOf(buffered, input);
    expect(maxAbsDiff(groupedOutput, bufferedOutput)).toBeLessThan(1e-6);
    tf.dispose([groupedOutput, bufferedOutput]);
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
    grouped.dispose();
    buffered.dispose();
  });
});

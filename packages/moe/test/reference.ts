/**
 * Naive references for the tests: one-hot dispatch and combine tensors multiplied densely, and a
 * dense FFN. Slow on purpose; never used outside the tests.
 */
import { expect } from 'vitest';
import { Rng, tf } from '@moebench/backend';
import {
  applyActivation,
  combine,
  dispatch,
  type Activation,
  type MoeFeedForward,
  type MoeLayer,
  type RouterContext,
  type RoutingPlan,
} from '../src/index.js';

function slotIndices(plan: RoutingPlan, choice: number): Int32Array {
  const tokens = plan.experts.length / plan.k;
  const indices = new Int32Array(tokens);
  for (let token = 0; token < tokens; token++) {
    const index = token * plan.k + choice;
    indices[token] = plan.slots[index] < 0 ? -1 : plan.experts[index] * plan.capacity + plan.slots[index];
  }
  return indices;
}

/** One-hot rows [indices.length, width] built in JavaScript (tf.oneHot rejects a width of 1); index -1 gives a zero row. */
function oneHotRows(indices: Int32Array, width: number): tf.Tensor2D {
  const rows = new Float32Array(indices.length * width);
  indices.forEach((column, row) => {
    if (column >= 0) rows[row * width + column] = 1;
  });
  return tf.tensor2d(rows, [indices.length, width]);
}

/** Dispatch tensor [S, E * C]: 1 where token s sits in slot (e, c). */
export function naiveDispatchMask(plan: RoutingPlan): tf.Tensor2D {
  return tf.tidy(() => {
    const width = plan.numExperts * plan.capacity;
    let mask = tf.zeros([plan.experts.length / plan.k, width]);
    for (let choice = 0; choice < plan.k; choice++) {
      mask = tf.add(mask, oneHotRows(slotIndices(plan, choice), width));
    }
    return mask as tf.Tensor2D;
  });
}

/** features [S, d] -> [E, C, d] by a dense product with the one-hot dispatch tensor. */
export function naiveDispatch(features: tf.Tensor2D, plan: RoutingPlan): tf.Tensor3D {
  return tf.tidy(() => {
    const mask = naiveDispatchMask(plan); // [S, E * C]
    const buffer = tf.matMul(mask, features, true, false); // [E * C, d]
    return tf.reshape(buffer, [plan.numExperts, plan.capacity, features.shape[1]]) as tf.Tensor3D;
  });
}

/** [E, C, d] -> [S, d] by a dense product with the gate-weighted one-hot combine tensor. */
export function naiveCombine(expertOutputs: tf.Tensor3D, plan: RoutingPlan): tf.Tensor2D {
  return tf.tidy(() => {
    const width = plan.numExperts * plan.capacity;
    const tokens = plan.experts.length / plan.k;
    let weights = tf.zeros([tokens, width]);
    for (let choice = 0; choice < plan.k; choice++) {
      const oneHot = oneHotRows(slotIndices(plan, choice), width);
      const gate = tf.slice(plan.gates, [0, choice], [tokens, 1]);
      weights = tf.add(weights, tf.mul(oneHot, gate));
    }
    const flat = tf.reshape(expertOutputs, [width, expertOutputs.shape[2]]);
    return tf.matMul(weights, flat) as tf.Tensor2D;
  });
}

/** A dense FFN act(x W1 + b1) W2 + b2 with W1 [d, f], b1 [f], W2 [f, d], b2 [d]. */
export function denseFeedForward(
  x: tf.Tensor2D,
  w1: tf.Tensor,
  b1: tf.Tensor,
  w2: tf.Tensor,
  b2: tf.Tensor,
  activation: Activation = 'gelu',
): tf.Tensor2D {
  return tf.tidy(() => {
    const hidden = applyActivation(tf.add(tf.matMul(x, w1 as tf.Tensor2D), b1), activation) as tf.Tensor2D;
    return tf.add(tf.matMul(hidden, w2 as tf.Tensor2D), b2) as tf.Tensor2D;
  });
}

/** Reads a tensor into a plain array of numbers. */
export function values(tensor: tf.Tensor): number[] {
  return Array.from(tensor.dataSync());
}

/** Largest absolute difference between two tensors of the same shape. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expectSameShape(a, b);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function expectSameShape(a: tf.Tensor, b: tf.Tensor): void {
  if (a.shape.join(',') !== b.shape.join(',')) {
    throw new Error(`shapes differ: [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
}

/**
 * Asserts that the gather path (dispatch, combine) equals the one-hot reference in the loss and in
 * the gradient of every variable of `layer`, on a routing call that drops at least one choice.
 * `input` is [12, 4]; the loss is a weighted sum of squared outputs plus the balance loss.
 */
export function expectGatherMatchesReference(layer: MoeFeedForward, input: tf.Tensor2D, context: () => RouterContext): void {
  let dropped = 0;
  const lossOf = (fast: boolean) => () =>
    tf.tidy(() => {
      const plan = layer.router.route(input, context());
      dropped = Array.from(plan.slots).filter((slot) => slot < 0).length;
      const outputs = layer.bank.apply(fast ? dispatch(input, plan) : naiveDispatch(input, plan));
      const combined = fast ? combine(outputs, plan) : naiveCombine(outputs, plan);
      const weights = tf.reshape(tf.range(1, 49), [12, 4]);
      return tf.add(tf.sum(tf.mul(tf.square(combined), weights)), plan.losses.balance) as tf.Scalar;
    });
  const fast = tf.variableGrads(lossOf(true), layer.trainableVariables);
  const naive = tf.variableGrads(lossOf(false), layer.trainableVariables);
  expect(dropped).toBeGreaterThan(0);
  expect(fast.value.dataSync()[0]).toBeCloseTo(naive.value.dataSync()[0], 3);
  for (const variable of layer.trainableVariables) {
    const reference = naive.grads[variable.name];
    const scale = Math.max(1, tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0]));
    expect(maxAbsDiff(fast.grads[variable.name], reference) / scale, variable.name).toBeLessThan(1e-5);
    expect(tf.tidy(() => tf.max(tf.abs(fast.grads[variable.name])).dataSync()[0]), variable.name).toBeGreaterThan(0);
  }
  tf.dispose([fast.value, naive.value, ...Object.values(fast.grads), ...Object.values(naive.grads)]);
}

/**
 * Trains a fresh layer from `createLayer` for four Adam steps on a fixed [2, 8, 4] input (loss: mean
 * squared change plus the auxiliary loss), asserts that the tensor count stays flat after the first
 * step, releases everything and returns the four losses.
 */
export function trainFourSteps(createLayer: () => MoeLayer, contextOf: (step: number) => RouterContext): number[] {
  const layer = createLayer();
  const input = new Rng(8).normalTensor([2, 8, 4]);
  const optimizer = tf.train.adam(0.01);
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let step = 0; step < 4; step++) {
    const cost = optimizer.minimize(
      () => {
        const { output, auxLoss } = layer.apply(input, contextOf(step));
        return tf.add(tf.mean(tf.square(tf.sub(output, input))), auxLoss) as tf.Scalar;
      },
      true,
      layer.trainableVariables,
    )!;
    losses.push(cost.dataSync()[0]);
    cost.dispose();
    if (step === 0) tensorsAfterFirst = tf.memory().numTensors;
  }
  expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
  optimizer.dispose();
  input.dispose();
  layer.dispose();
  return losses;
}

/**
 * Asserts that the router gradient of `layer` equals central finite differences of the layer loss
 * sum(output x target) + 100 x auxLoss on a fixed [10, 4] input, entry by entry of `weights` [4, E].
 * This checks the router gradient independently of the gate code.
 */
export function expectRouterGradientMatchesDifferences(layer: MoeLayer, weights: tf.Variable): void {
  const input = new Rng(22).normalTensor([10, 4]) as tf.Tensor2D;
  const target = new Rng(23).normalTensor([10, 4]);
  const lossOf = () =>
    tf.tidy(() => {
      const { output, auxLoss } = layer.apply(input, { training: true });
      return tf.add(tf.sum(tf.mul(output, target)), tf.mul(auxLoss, 100)) as tf.Scalar;
    });
  const { value, grads } = tf.variableGrads(lossOf, [weights]);
  const analytic = values(grads[weights.name]);
  const original = values(weights);
  const step = 1e-2;
  for (let index = 0; index < original.length; index++) {
    const probe = (delta: number): number => {
      const shifted = original.slice();
      shifted[index] += delta;
      tf.tidy(() => weights.assign(tf.tensor(shifted, weights.shape)));
      return tf.tidy(() => lossOf().dataSync()[0]);
    };
    const numeric = (probe(step) - probe(-step)) / (2 * step);
    expect(Math.abs(numeric - analytic[index]), `Wr[${index}]`).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic[index])));
  }
  tf.dispose([value, ...Object.values(grads), input, target]);
}

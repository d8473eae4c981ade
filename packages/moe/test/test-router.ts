/** A plain linear top-k router for the tests of the shared machinery. */
import { Rng, tf } from '@moebench/backend';
import { assignSlots, computeCapacity, selectGates, type Router, type RouterContext, type RoutingPlan } from '../src/index.js';

/** Top-k over softmax(x W), gates taken through one-hot masks, Switch-style capacity. */
export class TopKTestRouter implements Router {
  readonly name = 'test-top-k';
  readonly weights: tf.Variable;

  constructor(
    readonly dModel: number,
    readonly numExperts: number,
    readonly k: number,
    readonly capacityFactor: number,
    seed = 1,
  ) {
    this.weights = tf.variable(new Rng(seed).normalTensor([dModel, numExperts], 0, 1), true);
  }

  get trainableVariables(): tf.Variable[] {
    return [this.weights];
  }

  route(features: tf.Tensor2D, _context: RouterContext): RoutingPlan {
    const tokens = features.shape[0];
    const probs = tf.softmax(tf.matMul(features, this.weights as tf.Tensor2D)) as tf.Tensor2D;
    const values = probs.dataSync();
    const experts = new Int32Array(tokens * this.k);
    for (let token = 0; token < tokens; token++) {
      const order = Array.from({ length: this.numExperts }, (_, e) => e).sort(
        (a, b) => values[token * this.numExperts + b] - values[token * this.numExperts + a] || a - b,
      );
      for (let choice = 0; choice < this.k; choice++) experts[token * this.k + choice] = order[choice];
    }
    const capacity = computeCapacity({ tokens, numExperts: this.numExperts, k: this.k, capacityFactor: this.capacityFactor });
    const slots = assignSlots(experts, this.k, this.numExperts, capacity);

    const gates = selectGates(probs, experts, this.k);
    return { numExperts: this.numExperts, k: this.k, capacity, experts, slots, gates, losses: {}, probs };
  }
}

import { tf, type Rng } from '@moebench/backend';
import {
  argmaxRows,
  assignSlots,
  balanceLoss,
  computeCapacity,
  selectGates,
  zLoss,
  type RouterContext,
  type RoutingPlan,
} from '@moebench/moe';

/** Settings of one Switch routing call. */
export interface SwitchRouteOptions {
  /** Capacity factor of this call (the layer passes its training or evaluation factor); <= 0 drops nothing. */
  capacityFactor: number;
  /** Jitter half-width eps; applied in training only, 0 for none. */
  jitterEps: number;
  /** Weight of the balance loss; 0 leaves it out of `plan.losses`. */
  balanceLossWeight: number;
  /** Weight of the z-loss; 0 leaves it out of `plan.losses`. */
  zLossWeight: number;
}

/**
 * Returns `size` multiplicative jitter factors uniform in [1 - eps, 1 + eps), float32. Each 32-bit draw
 * of `rng` gives two factors from its two 16-bit halves, which halves the draws (S x d per step); the
 * 2^-16 resolution is a step of 2 eps / 65536 in the factor, 3e-7 at the default eps.
 */
export function jitterNoise(rng: Rng, size: number, eps: number): Float32Array {
  const noise = new Float32Array(size);
  const low = 1 - eps;
  const scale = (2 * eps) / 65536;
  for (let index = 0; index < size; index += 2) {
    const bits = rng.nextUint32();
    noise[index] = low + scale * (bits & 0xffff);
    if (index + 1 < size) noise[index + 1] = low + scale * (bits >>> 16);
  }
  return noise;
}

/**
 * Routes tokens top-1 as the Switch Transformer does: logits = x' Wr, where x' is x times uniform
 * noise in [1 - eps, 1 + eps] in training and x otherwise; probs = softmax(logits); each token goes to
 * its argmax expert (ties to the lowest index) with gate probs[s, expert], taken through a one-hot mask
 * so that the router gets a gradient. Slots follow token order; choices past
 * C = ceil(S / E x capacityFactor) are dropped. Losses: `balance` (Switch form, over first choices
 * before dropping) and, when its weight is positive, `z`.
 *
 * @param features token features [S, d], float32
 * @param routerWeights Wr [d, E]
 * @throws Error when jitter is on in training and `context.rng` is missing.
 */
export function switchRoute(
  features: tf.Tensor2D,
  routerWeights: tf.Tensor2D,
  options: SwitchRouteOptions,
  context: RouterContext,
): RoutingPlan {
  const [tokens, dModel] = features.shape;
  const numExperts = routerWeights.shape[1];
  if (routerWeights.shape[0] !== dModel) {
    throw new RangeError(`switchRoute: routerWeights must have shape [${dModel}, E], received [${routerWeights.shape.join(', ')}]`);
  }
  const jitter = context.training && options.jitterEps > 0;
  if (jitter && context.rng === undefined) {
    throw new Error('switchRoute: context.rng is missing; jitter in training draws from it (or set jitterEps to 0)');
  }

  const logits = tf.tidy(() => {
    const routerInput = jitter
      ? tf.mul(features, tf.tensor2d(jitterNoise(context.rng!, tokens * dModel, options.jitterEps), [tokens, dModel]))
      : features;
    return tf.matMul(routerInput, routerWeights) as tf.Tensor2D; // [S, E]
  });
  const probs = tf.softmax(logits) as tf.Tensor2D; // [S, E]

  const experts = argmaxRows(probs.dataSync() as Float32Array, tokens, numExperts);
  const capacity = computeCapacity({ tokens, numExperts, k: 1, capacityFactor: options.capacityFactor });
  const slots = assignSlots(experts, 1, numExperts, capacity);
  const gates = selectGates(probs, experts, 1); // [S, 1]

  const losses: Record<string, tf.Scalar> = {};
  if (options.balanceLossWeight > 0) losses.balance = balanceLoss(probs, experts, options.balanceLossWeight);
  if (options.zLossWeight > 0) losses.z = zLoss(logits, options.zLossWeight);
  return { numExperts, k: 1, capacity, experts, slots, gates, losses, probs };
}

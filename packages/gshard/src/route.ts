import { tf, type Rng } from '@moebench/backend';
import {
  argmaxRows,
  assignSlots,
  balanceLoss,
  selectGates,
  zLoss,
  type RouterContext,
  type RoutingPlan,
} from '@moebench/moe';
import { gshardCapacity } from './capacity.js';
import type { GateNormalization, SecondExpertPolicy } from './options.js';
import { gshardStats } from './stats.js';

/** Settings of one GShard routing call. */
export interface GShardRouteOptions {
  /** Second-expert policy, applied in training; evaluation takes the plain second argmax. */
  secondExpertPolicy: SecondExpertPolicy;
  /** Second-expert policy in evaluation. Default: 'all' (the plain second argmax, no draw). */
  evalSecondExpertPolicy?: SecondExpertPolicy;
  /** When the gates are renormalised. */
  normalizeGates: GateNormalization;
  /** Training capacity factor; <= 0 drops nothing. */
  capacityFactor: number;
  /** Evaluation capacity as a fraction of the tokens; <= 0 uses the training formula. */
  evalCapacityTokenFraction: number;
  /** Weight of the balance loss; 0 leaves it out of `plan.losses`. */
  balanceLossWeight: number;
  /** Weight of the z-loss; 0 leaves it out of `plan.losses`. */
  zLossWeight: number;
}

/** The smallest float32 step above 1, which keeps a gate denominator away from zero. */
const FLOAT32_EPSILON = 1.1920928955078125e-7;

/** Returns a standard Gumbel draw, -log(-log(u)) with u uniform in (0, 1). */
function gumbel(rng: Rng): number {
  let u = rng.next();
  while (u === 0) u = rng.next();
  return -Math.log(-Math.log(u));
}

/**
 * Routes tokens top-2 as GShard does, in fairseq's top-2 gate form:
 * 1. probs = softmax(x Wr) [S, E]; the first expert e1 is the argmax (ties to the lowest index).
 * 2. `secondExpertPolicy` chooses the second expert e2 in training, `evalSecondExpertPolicy` in
 *    evaluation (default 'all', the plain second argmax: our reading, so evaluation draws nothing).
 *    The random policy keeps e2 when a uniform draw is below 2 x g2, with g2 normalised over both
 *    choices under `before-capacity` and the plain probability under `after-capacity`, as fairseq.
 * 3. Capacity (`gshardCapacity`); every first choice takes a slot before any second choice.
 * 4. Gates g1 = probs[e1], g2 = probs[e2], renormalised to sum to one after or before capacity
 *    dropping (`normalizeGates`), through one-hot masks so the router gets a gradient.
 * Losses: `balance` (Switch form over first choices, before dropping) and optionally `z`.
 * `plan.extraStats` carries fairseq's routing figures (see `gshardStats`).
 *
 * @param features token features [S, d], float32
 * @param routerWeights Wr [d, E], E >= 2
 * @throws Error when a training policy draws and `context.rng` is missing.
 */
export function gshardRoute(
  features: tf.Tensor2D,
  routerWeights: tf.Tensor2D,
  options: GShardRouteOptions,
  context: RouterContext,
): RoutingPlan {
  const [tokens, dModel] = features.shape;
  const numExperts = routerWeights.shape[1];
  if (routerWeights.shape[0] !== dModel || numExperts < 2) {
    throw new RangeError(
      `gshardRoute: routerWeights must have shape [${dModel}, E] with E >= 2, received [${routerWeights.shape.join(', ')}]`,
    );
  }
  const policy = context.training ? options.secondExpertPolicy : (options.evalSecondExpertPolicy ?? 'all');
  if (policy !== 'all' && context.rng === undefined) {
    const mode = context.training ? 'training' : 'evaluation';
    throw new Error(`gshardRoute: context.rng is missing; the "${policy}" second-expert policy draws from it in ${mode}`);
  }
  const rng = context.rng as Rng;

  const logits = tf.matMul(features, routerWeights) as tf.Tensor2D; // [S, E]
  const probs = tf.softmax(logits) as tf.Tensor2D; // [S, E]
  const probValues = probs.dataSync();

  // First and second choices.
  const first = argmaxRows(probValues, tokens, numExperts);
  let second: Int32Array;
  if (policy === 'sampling') {
    const logitValues = logits.dataSync();
    const noisy = new Float32Array(logitValues.length);
    for (let index = 0; index < noisy.length; index++) noisy[index] = logitValues[index] + gumbel(rng);
    second = argmaxRows(noisy, tokens, numExperts, first);
  } else {
    second = argmaxRows(probValues, tokens, numExperts, first);
  }
  const chosen = new Int32Array(2 * tokens); // [S * 2], both choices
  for (let token = 0; token < tokens; token++) {
    chosen[2 * token] = first[token];
    chosen[2 * token + 1] = second[token];
  }

  // The random policy keeps e2 with probability min(1, 2 x g2), where g2 is the second gate as it
  // stands before capacity, as in fairseq's top-2 gate: normalised over both choices when the gates
  // are normalised before capacity (the GShard paper's form), and the plain probability p2 otherwise.
  const experts = chosen.slice();
  let skippedSecond = 0;
  if (policy === 'random') {
    const normalizeFirst = options.normalizeGates === 'before-capacity';
    for (let token = 0; token < tokens; token++) {
      const p1 = probValues[token * numExperts + first[token]];
      const p2 = probValues[token * numExperts + second[token]];
      const g2 = normalizeFirst ? p2 / Math.max(p1 + p2, FLOAT32_EPSILON) : p2;
      if (rng.next() >= 2 * g2) {
        experts[2 * token + 1] = -1;
        skippedSecond++;
      }
    }
  }

  const capacity = gshardCapacity({
    tokens,
    numExperts,
    capacityFactor: options.capacityFactor,
    evalCapacityTokenFraction: options.evalCapacityTokenFraction,
    training: context.training,
  });
  const slots = assignSlots(experts, 2, numExperts, capacity);
  const gates = normalizedGates(probs, chosen, slots, options.normalizeGates);

  const losses: Record<string, tf.Scalar> = {};
  if (options.balanceLossWeight > 0) losses.balance = balanceLoss(probs, first, options.balanceLossWeight);
  if (options.zLossWeight > 0) losses.z = zLoss(logits, options.zLossWeight);
  logits.dispose();

  const extraStats = gshardStats(experts, slots, numExperts, skippedSecond);
  return { numExperts, k: 2, capacity, experts, slots, gates, losses, probs, extraStats };
}

/** Gates [S, 2] of both choices, renormalised over the kept choices or over both. */
function normalizedGates(
  probs: tf.Tensor2D,
  chosen: Int32Array,
  slots: Int32Array,
  normalization: GateNormalization,
): tf.Tensor2D {
  const tokens = probs.shape[0];
  return tf.tidy(() => {
    let gates = selectGates(probs, chosen, 2); // [S, 2]
    if (normalization === 'after-capacity') {
      const kept = Float32Array.from(slots, (slot) => (slot >= 0 ? 1 : 0));
      gates = tf.mul(gates, tf.tensor2d(kept, [tokens, 2]));
    }
    const denominator = tf.maximum(tf.sum(gates, 1, true), FLOAT32_EPSILON); // [S, 1]
    return tf.div(gates, denominator) as tf.Tensor2D;
  });
}

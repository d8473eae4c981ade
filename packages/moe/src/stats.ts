import type { tf } from '@moebench/backend';
import type { RoutingPlan, RoutingStats } from './types.js';

/** Mean entropy in nats of the rows of `probs` [S, E], read back synchronously. */
export function meanEntropy(probs: tf.Tensor2D): number {
  const [tokens, numExperts] = probs.shape;
  const values = probs.dataSync();
  let total = 0;
  for (let token = 0; token < tokens; token++) {
    for (let expert = 0; expert < numExperts; expert++) {
      const p = values[token * numExperts + expert];
      if (p > 0) total -= p * Math.log(p);
    }
  }
  return tokens === 0 ? 0 : total / tokens;
}

/**
 * Computes the routing statistics of a plan: load per expert before and after capacity, dropped
 * fraction, router entropy (from `probs`, else `plan.probs`, else null), max over mean load and idle
 * experts. Loads count every choice (k per token); choices marked "no choice" (expert -1) are left out.
 * Reads `probs` back synchronously, so call it once per layer and step.
 */
export function computeRoutingStats(plan: RoutingPlan, probs?: tf.Tensor2D): RoutingStats {
  const { numExperts, experts, slots } = plan;
  const tokensPerExpert = new Array<number>(numExperts).fill(0);
  const keptPerExpert = new Array<number>(numExperts).fill(0);
  let routed = 0;
  let kept = 0;
  for (let index = 0; index < experts.length; index++) {
    const expert = experts[index];
    if (expert < 0) continue;
    routed++;
    tokensPerExpert[expert]++;
    if (slots[index] >= 0) {
      kept++;
      keptPerExpert[expert]++;
    }
  }

  const meanLoad = routed / numExperts;
  const source = probs ?? plan.probs;
  return {
    tokensPerExpert,
    keptPerExpert,
    droppedFraction: routed === 0 ? 0 : (routed - kept) / routed,
    routerEntropy: source ? meanEntropy(source) : null,
    maxOverMeanLoad: meanLoad === 0 ? 0 : Math.max(...tokensPerExpert) / meanLoad,
    idleExperts: tokensPerExpert.filter((count) => count === 0).length,
    extra: { ...(plan.extraStats ?? {}) },
  };
}

import { tf } from '@moebench/backend';
import { assignSlots, computeCapacity, type RouterContext, type RoutingPlan } from '@moebench/moe';
import { lookupExperts, type HashTable } from './table.js';

/**
 * Routes tokens by their ids through a fixed hash table, as HASH Layers do: no router parameters,
 * gate 1, no auxiliary loss. With `capacityFactor` <= 0 (the default of the layer) nothing is dropped:
 * the plan is marked `dropless`, so the layer runs each expert on exactly its tokens, and its
 * capacity is the busiest expert's load in this call. With a positive factor,
 * C = ceil(S / E x factor) as in `computeCapacity`, and choices past C are dropped.
 *
 * @param features token features [S, d]; only their count is used
 * @throws RangeError when `context.tokenIds` is missing or does not have S entries.
 */
export function hashRoute(features: tf.Tensor2D, table: HashTable, capacityFactor: number, context: RouterContext): RoutingPlan {
  const tokens = features.shape[0];
  const tokenIds = context.tokenIds;
  if (tokenIds === undefined || tokenIds.length !== tokens) {
    throw new RangeError(`hashRoute: context.tokenIds must hold the ${tokens} routed token ids, received ${tokenIds?.length ?? 'none'}`);
  }
  const { numExperts } = table;
  const experts = lookupExperts(table, tokenIds, context.previousTokenIds);

  let capacity: number;
  const dropless = capacityFactor <= 0;
  if (!dropless) {
    capacity = computeCapacity({ tokens, numExperts, k: 1, capacityFactor });
  } else {
    const loads = new Int32Array(numExperts);
    for (const expert of experts) loads[expert]++;
    capacity = Math.max(1, ...loads);
  }
  const slots = assignSlots(experts, 1, numExperts, capacity);
  return { numExperts, k: 1, capacity, dropless, experts, slots, gates: tf.ones([tokens, 1]) as tf.Tensor2D, losses: {} };
}

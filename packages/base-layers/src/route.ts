import { tf } from '@moebench/backend';
import { assignSlots, type RouterContext, type RoutingPlan } from '@moebench/moe';
import { balancedAssignment, greedyAssignment, type AuctionOptions } from './auction.js';

/**
 * Routes tokens the BASE way, with affinities a[s, e] = x_s . w_e for the expert centroids w_e.
 * In training every expert takes ceil(S / E) tokens by a balanced assignment that maximises the
 * total affinity (`balancedAssignment`; when E does not divide S, at most one slot per expert stays
 * empty). In evaluation each token goes to its highest-affinity expert on its own. The gate of a
 * token is sigmoid(a[s, e]) at its expert, differentiable with respect to the features and the
 * centroids. The assignment itself is not differentiable: it is computed on the affinities read
 * back to JavaScript. There is no auxiliary loss.
 *
 * Capacity is ceil(S / E) in training and the busiest expert's count in evaluation, so no token is
 * ever dropped. Call inside the caller's tidy or gradient scope.
 *
 * @param features token features [S, d], the residual stream itself (no layer norm in front).
 * @param centroids expert centroids [E, d].
 * @throws RangeError in training when there are fewer tokens than experts, naming both counts.
 */
export function baseRoute(
  features: tf.Tensor2D,
  centroids: tf.Tensor2D,
  context: RouterContext,
  auction: AuctionOptions = {},
): RoutingPlan {
  const [tokens, dModel] = features.shape;
  const [numExperts, centroidWidth] = centroids.shape;
  if (centroidWidth !== dModel) {
    throw new RangeError(`baseRoute: centroids must have shape [E, ${dModel}] to match the features, received [${centroids.shape.join(', ')}]`);
  }
  if (context.training && tokens < numExperts) {
    throw new RangeError(
      `baseRoute: balanced assignment in training needs at least as many tokens as experts, received ${tokens} tokens for ${numExperts} experts`,
    );
  }

  const affinities = tf.matMul(features, centroids, false, true); // [S, E]
  const affinityValues = affinities.dataSync() as Float32Array;

  let experts: Int32Array;
  let capacity: number;
  const extraStats: Record<string, number> = {};
  if (context.training) {
    const assignment = balancedAssignment(affinityValues, tokens, numExperts, auction);
    experts = assignment.experts;
    capacity = assignment.capacity;
    extraStats.auctionBids = assignment.bids;
    extraStats.auctionRounds = assignment.rounds;
  } else {
    experts = greedyAssignment(affinityValues, tokens, numExperts);
    const counts = new Int32Array(numExperts);
    for (const expert of experts) counts[expert]++;
    capacity = Math.max(...counts);
  }
  const slots = assignSlots(experts, 1, numExperts, capacity);

  // The chosen affinity through a one-hot mask [S, E] (small: E columns), so gradients reach both
  // the features and the centroids.
  const mask = new Float32Array(tokens * numExperts);
  for (let s = 0; s < tokens; s++) mask[s * numExperts + experts[s]] = 1;
  const chosen = tf.sum(tf.mul(affinities, tf.tensor2d(mask, [tokens, numExperts])), 1, true); // [S, 1]
  const gates = tf.sigmoid(chosen) as tf.Tensor2D;

  return { numExperts, k: 1, capacity, experts, slots, gates, losses: {}, extraStats };
}

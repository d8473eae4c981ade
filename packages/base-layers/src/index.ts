export {
  DEFAULT_EPSILON_SCALING,
  DEFAULT_RELATIVE_EPSILON,
  balancedAssignment,
  greedyAssignment,
  type AuctionOptions,
  type BalancedAssignment,
} from './auction.js';
export { maxScoreAssignment } from './exact-assignment.js';
export { resolveBaseLayerOptions, type BaseLayerOptions, type ResolvedBaseLayerOptions } from './options.js';
export { baseRoute } from './route.js';
export { BaseLayer, BaseRouter, createBaseLayer } from './layer.js';

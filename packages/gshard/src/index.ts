export {
  GATE_NORMALIZATIONS,
  SECOND_EXPERT_POLICIES,
  resolveGShardOptions,
  type GateNormalization,
  type GShardOptions,
  type ResolvedGShardOptions,
  type SecondExpertPolicy,
} from './options.js';
export { gshardCapacity, type GShardCapacityOptions } from './capacity.js';
export { gshardRoute, type GShardRouteOptions } from './route.js';
export { gshardStats } from './stats.js';
export { createGShardLayer, GShardLayer, GShardRouter } from './layer.js';

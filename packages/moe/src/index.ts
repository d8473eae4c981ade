export type { MoeLayer, MoeOutput, Router, RouterContext, RoutingPlan, RoutingStats } from './types.js';
export { assignSlots, computeCapacity, type CapacityOptions } from './capacity.js';
export { combine, combineIndices, dispatch, dispatchIndices } from './dispatch.js';
export { applyExpertsPerGroup, groupByExpert, isDroplessPlan, type ExpertGroups } from './grouped.js';
export { expertRowsPerToken } from './capacity.js';
export { ACTIVATIONS, applyActivation, type Activation } from './activation.js';
export { addBias, addGroupBias, dense, denseSplit, gelu, groupedLayerNorm, layerNorm, sumRows } from './ops.js';
export { ExpertBank, type ExpertBankOptions } from './expert-bank.js';
export { balanceLoss, zLoss } from './losses.js';
export { computeRoutingStats, meanEntropy } from './stats.js';
export { MoeFeedForward, type MoeFeedForwardOptions } from './feed-forward.js';
export { requireAbove, requireInteger, requireName, requireNumber, requireOneOf, requireLayerInput, requireOptions, requireSeed } from './validate.js';
export { selectGates } from './gates.js';
export { argmaxRows } from './argmax.js';
export {
  createLayerExpertBank,
  createRouterWeights,
  EXPERT_LAYER_OPTION_KEYS,
  LinearRouter,
  type LinearRouterOptions,
  resolveExpertLayerOptions,
  type ExpertLayerOptions,
  type ResolvedExpertLayerOptions,
} from './layer-options.js';

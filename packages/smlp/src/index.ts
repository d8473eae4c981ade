export {
  createSpatialGatingUnit,
  initSpatialWeight,
  type SpatialGatingUnit,
  type SpatialGatingUnitOptions,
} from './spatial-gating.js';
export { checkGmlpBlockOptions, createGmlpBlock, type GmlpBlock, type GmlpBlockOptions, type ResolvedGmlpBlockOptions } from './gmlp-block.js';
export { causalMask, causalTokenMixing, dense, expertTokenMixing, gelu, layerNorm } from './ops.js';
export {
  createSmoe,
  SMOE_ROUTING_MODES,
  type ResolvedSmoeOptions,
  type Smoe,
  type SmoeOptions,
  type SmoeOutput,
  type SmoeRouting,
} from './smoe.js';
export { maxScoreAssignment } from '@moebench/base-layers';
export {
  checkSparseBlockOptions,
  createSparseBlock,
  type SparseBlock,
  type SparseBlockOptions,
  type SparseBlockOutput,
  type SparseBlockSmoeOptions,
  type SparseBlockTmoeOptions,
} from './sparse-block.js';

export {
  createSpatialGatingUnit,
  initSpatialWeight,
  type SpatialGatingUnit,
  type SpatialGatingUnitOptions,
} from './spatial-gating.js';
export { createGmlpBlock, type GmlpBlock, type GmlpBlockOptions, type ResolvedGmlpBlockOptions } from './gmlp-block.js';
export { batchMatMul3d, causalMask, causalTokenMixing, dense, expertTokenMixing, gelu, layerNorm, matMul2d } from './ops.js';
export {
  createSmoe,
  SMOE_ROUTING_MODES,
  type ResolvedSmoeOptions,
  type Smoe,
  type SmoeOptions,
  type SmoeOutput,
  type SmoeRouting,
} from './smoe.js';
export { maxScoreAssignment } from './assignment.js';

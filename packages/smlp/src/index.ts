export {
  createSpatialGatingUnit,
  initSpatialWeight,
  type SpatialGatingUnit,
  type SpatialGatingUnitOptions,
} from './spatial-gating.js';
export { createGmlpBlock, type GmlpBlock, type GmlpBlockOptions, type ResolvedGmlpBlockOptions } from './gmlp-block.js';
export { causalMask, causalTokenMixing, dense, gelu, layerNorm, matMul2d } from './ops.js';

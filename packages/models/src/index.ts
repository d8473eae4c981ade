export { ARCHITECTURES, type Architecture, type ForwardOptions, type ForwardOutput, type LanguageModel, type ModelAccounting } from './types.js';
export {
  SPARSE_ARCHITECTURES,
  TRANSFORMER_FAMILY,
  LAYER_OPTION_KEYS,
  checkArchitecture,
  layerOptionKeysOf,
  resolveConfig,
  sparseBlockIndices,
  type HashModelOptions,
  type LayerOptions,
  type ModelConfig,
  type ResolvedModelConfig,
} from './config.js';
export { accountModel, accountParts, type PartAccount } from './accounting.js';
export { CHECKPOINT_MAGIC, type CheckpointTables } from './checkpoint.js';
export { countMatMulMultiplyAdds, type MatMulCount } from './matmul-count.js';
export { createModel, validateModelConfig, type CreateModelOptions } from './registry.js';
export { matchCompute, type ComputeMatch, type ComputeMatchOptions } from './compute-matching.js';

export { ARCHITECTURES, type Architecture, type ForwardOptions, type ForwardOutput, type LanguageModel, type ModelAccounting } from './types.js';

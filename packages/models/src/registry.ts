import { checkArchitecture, resolveConfig, type ModelConfig } from './config.js';
import { GmlpLanguageModel } from './gmlp.js';
import { SmlpLanguageModel } from './smlp.js';
import { TransformerLanguageModel } from './transformer.js';
import type { LanguageModel } from './types.js';

/** Options of `createModel`. */
export interface CreateModelOptions {
  /** Seed of the initial weights (and of the random HASH table). Default: 0. */
  seed?: number | string;
}

/**
 * Builds a model of `architecture` (`transformer`, `gmlp`, `gshard`, `switch`, `base`, `hash`,
 * `smlp`) from `config`, validating the config first.
 *
 * @throws Error for an unknown architecture (listing the valid ones) or an invalid config (naming
 *   the field, the value received and what is allowed).
 */
export function createModel(architecture: string, config: ModelConfig, options: CreateModelOptions = {}): LanguageModel {
  const kind = checkArchitecture(architecture);
  const resolved = resolveConfig(kind, config);
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' && typeof seed !== 'string') {
    throw new Error(`createModel: seed must be a number or a string, received ${typeof seed}.`);
  }
  switch (kind) {
    case 'transformer':
    case 'gshard':
    case 'switch':
    case 'base':
    case 'hash':
      return new TransformerLanguageModel(kind, resolved, seed);
    case 'gmlp':
      return new GmlpLanguageModel(resolved, seed);
    case 'smlp':
      return new SmlpLanguageModel(resolved, seed);
  }
}

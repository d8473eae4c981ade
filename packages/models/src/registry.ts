import { checkGmlpBlockOptions, checkSparseBlockOptions } from '@moebench/smlp';
import { checkArchitecture, resolveConfig, sparseBlockIndices, type ModelConfig } from './config.js';
import { GmlpLanguageModel, gmlpBlockOptions } from './gmlp.js';
import { checkSparseOptions } from './sparse-feed-forward.js';
import { SmlpLanguageModel, sparseBlockOptions } from './smlp.js';
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

/**
 * Checks `config` for `architecture` as `createModel` does, the options of every layer package
 * (switch, gshard, base, hash, gmlp, smlp) included, without creating any variable. HASH's
 * `unigramCounts`, which a run takes from its training data, may be left out.
 *
 * @throws the error `createModel` raises for this architecture and config.
 */
export function validateModelConfig(architecture: string, config: ModelConfig): void {
  const kind = checkArchitecture(architecture);
  const withCounts: ModelConfig =
    kind === 'hash' && config.hash?.unigramCounts === undefined && Number.isInteger(config.vocabSize) && config.vocabSize > 0
      ? { ...config, hash: { ...config.hash, unigramCounts: new Float64Array(config.vocabSize).fill(1) } }
      : config;
  const resolved = resolveConfig(kind, withCounts);
  if (kind === 'gshard' || kind === 'switch' || kind === 'base' || kind === 'hash') checkSparseOptions(kind, resolved);
  if (kind !== 'gmlp' && kind !== 'smlp') return;

  // Every block of one kind gets the same options but its seed, so one block of each kind is checked.
  const sparse = kind === 'smlp' ? sparseBlockIndices(resolved) : [];
  const dense = Array.from({ length: resolved.layers }, (_, index) => index).filter((index) => !sparse.includes(index));
  if (dense.length > 0) checkGmlpBlockOptions(gmlpBlockOptions(resolved, 'check', dense[0], resolved.gmlp));
  if (sparse.length > 0) checkSparseBlockOptions(sparseBlockOptions(resolved, 'check', sparse[0]));
}

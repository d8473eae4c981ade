import { ARCHITECTURES, type Architecture } from './types.js';

/**
 * Options passed through to an architecture's layer package. They are kept as plain objects here and
 * validated by the package that owns them when the model is built.
 */
export type LayerOptions = Record<string, unknown>;

/** Options of the HASH model besides those of its router package. */
export interface HashModelOptions extends LayerOptions {
  /**
   * Unigram counts of the training corpus, indexed by token id (length vocabSize). The `balanced`
   * table is built from them; they are not needed for a `random` table.
   */
  unigramCounts?: ArrayLike<number>;
}

/**
 * The configuration of every model in the zoo. Fields an architecture does not use are ignored by it.
 */
export interface ModelConfig {
  /** Vocabulary size V. */
  vocabSize: number;
  /** Model width d. */
  dModel: number;
  /** Number of blocks. */
  layers: number;
  /** Maximum sequence length T (position embeddings and spatial weights are built for it). */
  seqLen: number;
  /** Attention heads (Transformer family); must divide dModel. Default: 4. */
  heads?: number;
  /**
   * Hidden width. Transformer family: width of the FFN and of each expert, default 4 x dModel.
   * gMLP and sMLP: width h of each half of the gated projection (U: d -> 2h, V: h -> d), default
   * 3 x dModel, the 6 x d_model projection of the gMLP paper.
   */
  ffnHidden?: number;
  /** Experts E of each MoE layer (GShard, Switch, BASE, HASH, and sMLP's sMoE and tMoE). Default: 4. */
  experts?: number;
  /**
   * Every moeEvery-th block is sparse, counting from 1: with the default 2, blocks 2, 4, 6, ... (1-based)
   * carry the MoE FFN in the MoE Transformers, and the sparse blocks in sMLP. Default: 2.
   */
  moeEvery?: number;
  /** Standard deviation of the normal initialisation of weight matrices and embeddings. Default: 0.02. */
  initStd?: number;
  /** Epsilon of every layer norm the models own. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Options of the Switch router and layer (@moebench/switch). Default: {}. */
  switch?: LayerOptions;
  /** Options of the GShard router and layer (@moebench/gshard). Default: {}. */
  gshard?: LayerOptions;
  /** Options of the BASE layer (@moebench/base-layers). Default: {}. */
  base?: LayerOptions;
  /** Options of the HASH router (@moebench/hash-layers), plus the corpus unigram counts. Default: {}. */
  hash?: HashModelOptions;
  /** Options of the gMLP blocks (@moebench/smlp). Default: {}. */
  gmlp?: LayerOptions;
  /** Options of the sMLP blocks, sMoE and tMoE (@moebench/smlp). Default: {}. */
  smlp?: LayerOptions;
}

/** A config with every default filled in. */
export interface ResolvedModelConfig extends Required<Omit<ModelConfig, 'hash'>> {
  hash: HashModelOptions;
}

const CONFIG_KEYS = [
  'vocabSize',
  'dModel',
  'layers',
  'seqLen',
  'heads',
  'ffnHidden',
  'experts',
  'moeEvery',
  'initStd',
  'layerNormEpsilon',
  'switch',
  'gshard',
  'base',
  'hash',
  'gmlp',
  'smlp',
] as const;

/** The keys of the layer options objects a model config may carry. */
export const LAYER_OPTION_KEYS = ['switch', 'gshard', 'base', 'hash', 'gmlp', 'smlp'] as const;

/** Layer options the model sets from its own config fields, by options object: option -> config field. */
const MODEL_SET_OPTIONS: Record<(typeof LAYER_OPTION_KEYS)[number], Record<string, string>> = {
  switch: { dModel: 'dModel', numExperts: 'experts', hiddenSize: 'ffnHidden', seed: 'the seed of createModel', name: 'the model' },
  gshard: { dModel: 'dModel', numExperts: 'experts', hiddenSize: 'ffnHidden', seed: 'the seed of createModel', name: 'the model' },
  base: {
    dModel: 'dModel',
    numExperts: 'experts',
    hiddenSize: 'ffnHidden',
    layerNormEpsilon: 'layerNormEpsilon',
    seed: 'the seed of createModel',
    name: 'the model',
  },
  hash: {
    dModel: 'dModel',
    vocabSize: 'vocabSize',
    numExperts: 'experts',
    hiddenSize: 'ffnHidden',
    seed: 'the seed of createModel',
    name: 'the model',
  },
  gmlp: {
    dModel: 'dModel',
    maxSeqLen: 'seqLen',
    hiddenSize: 'ffnHidden',
    initStd: 'initStd',
    layerNormEpsilon: 'layerNormEpsilon',
    seed: 'the seed of createModel',
    name: 'the model',
  },
  smlp: {},
};

/** The nested options objects of `smlp`, with the options the model sets in each. */
const SMLP_NESTED: Record<string, Record<string, string>> = {
  smoe: {
    dModel: 'dModel',
    maxSeqLen: 'seqLen',
    initStd: 'initStd',
    layerNormEpsilon: 'layerNormEpsilon',
    seed: 'the seed of createModel',
    name: 'the model',
  },
  tmoe: { dModel: 'dModel', layerNormEpsilon: 'layerNormEpsilon', seed: 'the seed of createModel', name: 'the model' },
};

/**
 * Returns the layer options objects an architecture reads: its own router's or block's (`switch`,
 * `gshard`, `base`, `hash`, `gmlp`), and for sMLP `smlp` and `gmlp` (its dense blocks). The
 * Transformer reads none. An options object of another key has no effect on that architecture.
 */
export function layerOptionKeysOf(architecture: Architecture): readonly string[] {
  if (architecture === 'transformer') return [];
  if (architecture === 'smlp') return ['smlp', 'gmlp'];
  return [architecture];
}

/** The architectures built on the Transformer (attention) block. */
export const TRANSFORMER_FAMILY: readonly Architecture[] = ['transformer', 'gshard', 'switch', 'base', 'hash'];

/** The architectures with MoE layers. */
export const SPARSE_ARCHITECTURES: readonly Architecture[] = ['gshard', 'switch', 'base', 'hash', 'smlp'];

/** Checks an architecture name and returns it typed. */
export function checkArchitecture(name: string): Architecture {
  if (!(ARCHITECTURES as readonly string[]).includes(name)) {
    throw new Error(`Unknown architecture "${name}". Valid architectures: ${ARCHITECTURES.join(', ')}.`);
  }
  return name as Architecture;
}

/** Returns the hidden width default of an architecture for a model width. */
export function defaultHidden(architecture: Architecture, dModel: number): number {
  return architecture === 'gmlp' || architecture === 'smlp' ? 3 * dModel : 4 * dModel;
}

/**
 * Validates `config` for `architecture` and fills in the defaults.
 *
 * @throws Error naming the field, the value received and what is allowed. It is raised for an
 *   unknown or missing field, a value of the wrong kind or range, heads that do not divide dModel, a
 *   MoE model whose moeEvery leaves it without a sparse block, or a layer option the model sets.
 */
export function resolveConfig(architecture: Architecture, config: ModelConfig): ResolvedModelConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error(`Invalid model config: expected an object, received ${describe(config)}.`);
  }
  for (const key of Object.keys(config)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new Error(`Invalid model config: unknown field "${key}". Valid fields: ${CONFIG_KEYS.join(', ')}.`);
    }
  }

  const vocabSize = positiveInteger(config, 'vocabSize');
  const dModel = positiveInteger(config, 'dModel');
  const layers = positiveInteger(config, 'layers');
  const seqLen = positiveInteger(config, 'seqLen');
  const heads = positiveInteger(config, 'heads', 4);
  const ffnHidden = positiveInteger(config, 'ffnHidden', defaultHidden(architecture, dModel));
  const experts = positiveInteger(config, 'experts', 4);
  const moeEvery = positiveInteger(config, 'moeEvery', 2);
  const initStd = positiveNumber(config, 'initStd', 0.02);
  const layerNormEpsilon = positiveNumber(config, 'layerNormEpsilon', 1e-5);

  if (TRANSFORMER_FAMILY.includes(architecture) && dModel % heads !== 0) {
    throw new Error(
      `Invalid model config: heads must divide dModel (${dModel}), received heads = ${heads}. ` +
        `Allowed: a divisor of dModel.`,
    );
  }
  if (SPARSE_ARCHITECTURES.includes(architecture) && moeEvery > layers) {
    throw new Error(
      `Invalid model config: moeEvery must be at most layers (${layers}) so that the ${architecture} model ` +
        `has a sparse block, received moeEvery = ${moeEvery}.`,
    );
  }
  if (architecture === 'gshard' && experts < 2) {
    throw new Error(`Invalid model config: gshard routes each token to 2 experts, so experts must be at least 2, received ${experts}.`);
  }

  const options: Record<(typeof LAYER_OPTION_KEYS)[number], LayerOptions> = {
    switch: {},
    gshard: {},
    base: {},
    hash: {},
    gmlp: {},
    smlp: {},
  };
  for (const key of LAYER_OPTION_KEYS) {
    const value = config[key];
    if (value === undefined) continue;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`Invalid model config: ${key} must be an options object, received ${describe(value)}.`);
    }
    for (const option of Object.keys(value)) {
      const owner = MODEL_SET_OPTIONS[key][option];
      if (owner !== undefined) {
        throw new Error(`Invalid model config: ${key}.${option} is set by ${owner.startsWith('the ') ? owner : `the config field ${owner}`}; remove it from ${key}.`);
      }
    }
    options[key] = value;
  }
  checkSmlpOptions(options.smlp);
  if (architecture === 'smlp') {
    const smoe = (options.smlp.smoe ?? {}) as Record<string, unknown>;
    const smoeExperts = typeof smoe.numExperts === 'number' ? smoe.numExperts : experts;
    const smoeHidden = typeof smoe.hiddenSize === 'number' ? smoe.hiddenSize : ffnHidden;
    if (smoeHidden % smoeExperts !== 0) {
      throw new Error(
        `Invalid model config: sMLP cuts its gated width into one chunk per sMoE expert, so the sMoE hidden width ` +
          `(${smoeHidden}) must be a multiple of the sMoE experts (${smoeExperts}).`,
      );
    }
  }

  return { vocabSize, dModel, layers, seqLen, heads, ffnHidden, experts, moeEvery, initStd, layerNormEpsilon, ...options };
}

function checkSmlpOptions(smlp: LayerOptions): void {
  for (const [key, value] of Object.entries(smlp)) {
    const modelSet = SMLP_NESTED[key];
    if (modelSet === undefined) {
      throw new Error(`Invalid model config: unknown field "smlp.${key}". Valid fields: ${Object.keys(SMLP_NESTED).join(', ')}.`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`Invalid model config: smlp.${key} must be an options object, received ${describe(value)}.`);
    }
    for (const option of Object.keys(value)) {
      const owner = modelSet[option];
      if (owner !== undefined) {
        throw new Error(
          `Invalid model config: smlp.${key}.${option} is set by ${owner.startsWith('the ') ? owner : `the config field ${owner}`}; remove it from smlp.${key}.`,
        );
      }
    }
  }
}

/** Indices (0-based) of the sparse blocks: every moeEvery-th block counting from 1. */
export function sparseBlockIndices(config: Pick<ResolvedModelConfig, 'layers' | 'moeEvery'>): number[] {
  const indices: number[] = [];
  for (let i = 0; i < config.layers; i++) if ((i + 1) % config.moeEvery === 0) indices.push(i);
  return indices;
}

function positiveInteger(config: ModelConfig, field: keyof ModelConfig, fallback?: number): number {
  const value = config[field];
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`Invalid model config: ${field} is missing. Allowed: a positive integer.`);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`Invalid model config: ${field} must be a positive integer, received ${describe(value)}.`);
  }
  return value;
}

function positiveNumber(config: ModelConfig, field: keyof ModelConfig, fallback: number): number {
  const value = config[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`Invalid model config: ${field} must be a finite number above 0, received ${describe(value)}.`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `"${value}"`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return String(value);
}

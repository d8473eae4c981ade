import { Rng } from '@moebench/backend';
import {
  ACTIVATIONS,
  EXPERT_LAYER_OPTION_KEYS,
  requireInteger,
  requireName,
  requireNumber,
  requireOneOf,
  requireOptions,
  type Activation,
} from '@moebench/moe';
import { HASH_KINDS, type HashKind, type HashTable } from './table.js';

/** Options of a HASH layer. Every field but `dModel` and `vocabSize` has a default. */
export interface HashOptions {
  /** Model width d. Required, >= 1. */
  dModel: number;
  /** Vocabulary size V; token ids are in [0, V). Required, >= 1. */
  vocabSize: number;
  /** Experts E. Default: 8. */
  numExperts?: number;
  /** Hidden width f of each expert. Default: 4 * dModel. */
  hiddenSize?: number;
  /** Kind of table to build when `table` is not given. Default: 'random'. */
  kind?: HashKind;
  /** Unigram counts [V] of the training corpus. Required for kind 'balanced', unused otherwise. */
  unigramCounts?: ArrayLike<number>;
  /** A table built or loaded before (see `deserializeHashTable`); overrides `kind`. Default: none. */
  table?: HashTable;
  /** Capacity factor; <= 0 drops nothing, as HASH Layers route. Default: 0. */
  capacityFactor?: number;
  /** Scale of the experts' fan-in init (see `ExpertBankOptions.initScale`). Default: 1. */
  expertInitScale?: number;
  /** Activation inside each expert. Default: 'gelu'. */
  activation?: Activation;
  /**
   * Seed of the table (random and bigram kinds) and of the weight init: a non-negative integer, or a
   * string, which is hashed to one. Default: 0.
   */
  seed?: number | string;
  /** Prefix of the variable names; tfjs needs them unique. Default: none (tfjs numbers them). */
  name?: string;
}

/** Every option of a HASH layer, for the unknown-option check. */
const HASH_OPTION_KEYS: Record<keyof HashOptions, true> = {
  ...EXPERT_LAYER_OPTION_KEYS,
  vocabSize: true,
  kind: true,
  unigramCounts: true,
  table: true,
  capacityFactor: true,
};

/** HASH options with every default filled in (`table` and `unigramCounts` stay optional). */
export type ResolvedHashOptions = Required<Omit<HashOptions, 'name' | 'table' | 'unigramCounts' | 'seed'>> &
  Pick<HashOptions, 'name' | 'table' | 'unigramCounts'> & { seed: number };

/**
 * Fills in the defaults and validates every field, including that a given table matches the
 * vocabulary and the number of experts.
 *
 * @throws RangeError naming the field, the value received and what is allowed.
 */
export function resolveHashOptions(options: HashOptions): ResolvedHashOptions {
  const owner = 'HASH';
  requireOptions(owner, options, HASH_OPTION_KEYS, 'dModel and vocabSize');
  const dModel = requireInteger(owner, 'dModel', options.dModel, 1);
  const vocabSize = requireInteger(owner, 'vocabSize', options.vocabSize, 1);
  const numExperts = requireInteger(owner, 'numExperts', options.numExperts ?? 8, 1);
  const kind = requireOneOf(owner, 'kind', options.table?.kind ?? options.kind ?? 'random', HASH_KINDS);

  const { table, unigramCounts } = options;
  if (table !== undefined && table.vocabSize !== vocabSize) {
    throw new RangeError(`${owner}: table.vocabSize must equal vocabSize = ${vocabSize}, received ${table.vocabSize}`);
  }
  if (table !== undefined && table.numExperts !== numExperts) {
    throw new RangeError(`${owner}: table.numExperts must equal numExperts = ${numExperts}, received ${table.numExperts}`);
  }
  if (table !== undefined) checkTableEntries(owner, table);
  if (table === undefined && kind === 'balanced' && unigramCounts === undefined) {
    throw new RangeError(`${owner}: unigramCounts is missing; kind "balanced" builds its table from the corpus's unigram counts`);
  }
  if (table === undefined && kind === 'balanced' && unigramCounts!.length !== vocabSize) {
    throw new RangeError(`${owner}: unigramCounts must have vocabSize = ${vocabSize} entries, received ${unigramCounts!.length}`);
  }

  return {
    dModel,
    vocabSize,
    numExperts,
    hiddenSize: requireInteger(owner, 'hiddenSize', options.hiddenSize ?? 4 * dModel, 1),
    kind,
    capacityFactor: requireNumber(owner, 'capacityFactor', options.capacityFactor ?? 0),
    expertInitScale: requireNumber(owner, 'expertInitScale', options.expertInitScale ?? 1, 0),
    activation: requireOneOf(owner, 'activation', options.activation ?? 'gelu', ACTIVATIONS),
    seed: typeof options.seed === 'string' ? new Rng(options.seed).nextUint32() : requireInteger(owner, 'seed', options.seed ?? 0, 0),
    name: requireName(owner, 'name', options.name),
    table,
    unigramCounts,
  };
}

/** Throws unless a given table's lookup holds V entries, each an expert in [0, E) (bigram tables: a seed). */
function checkTableEntries(owner: string, table: HashTable): void {
  const { vocabSize, numExperts } = table;
  if (table.kind === 'bigram') {
    requireInteger(owner, 'table.seed', table.seed ?? 0, 0);
    return;
  }
  const experts = table.experts;
  if (experts === undefined || experts.length !== vocabSize) {
    throw new RangeError(`${owner}: table.experts must have table.vocabSize = ${vocabSize} entries, received ${experts === undefined ? 'none' : experts.length}`);
  }
  for (let token = 0; token < vocabSize; token++) {
    const expert = experts[token];
    if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
      throw new RangeError(`${owner}: table.experts[${token}] must be an expert in [0, ${numExperts}), received ${expert}`);
    }
  }
}

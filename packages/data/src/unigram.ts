import { DataError, checkInteger } from './errors.js';

/**
 * Counts how often each token id occurs in `tokens`, [vocabSize]. HASH Layers' balanced table
 * is built from the training split's counts.
 */
export function unigramCounts(tokens: Int32Array, vocabSize: number): Float64Array {
  checkInteger('vocabSize', vocabSize, 1);
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (id < 0 || id >= vocabSize) {
      throw new DataError(`tokens[${i}]`, id, 'is outside the vocabulary', `an id in [0, ${vocabSize})`);
    }
    counts[id]++;
  }
  return counts;
}

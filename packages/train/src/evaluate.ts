import { tf } from '@moebench/backend';
import type { LanguageModel } from '@moebench/models';
import type { TokenBatch } from './batches.js';
import { tokenNegativeLogLikelihood } from './loss.js';

/** Validation figures of a model on a fixed set of batches. */
export interface EvaluationResult {
  /** Mean cross-entropy in nats per counted token. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Bits per UTF-8 byte of the counted target text: loss / ln 2 x counted tokens / their bytes. */
  bitsPerByte: number;
  /** Target tokens that carried loss. */
  tokens: number;
  /**
   * Loss in nats summed over every sequence of every batch, by position: entry t adds the loss of
   * target t of each sequence that carries loss there, [seqLen]. A position outside the model's
   * `lossMask` adds nothing. Summing entries over a set of positions and dividing by their counts
   * gives the mean loss on those positions alone.
   */
  positionLossSums: number[];
  /**
   * Targets that carried loss at each position, over every sequence of every batch, [seqLen]: the
   * number of sequences, or 0 at a position the model's `lossMask` leaves out. Sums to `tokens`.
   */
  positionCounts: number[];
}

/**
 * Evaluates `model` in evaluation mode on `batches`, weighting each position that carries loss
 * equally (positions outside a model's `lossMask` do not count). Bytes of a batch are shared evenly
 * among its tokens for bits per byte, since a batch records only its total target bytes.
 *
 * The same forward pass also gives the loss sum and the count of counted targets at each position
 * of the sequence (`positionLossSums`, `positionCounts`), so that models scored on different
 * positions can be compared on the positions they share. Every batch must have the same `seqLen`.
 */
export function evaluate(model: LanguageModel, batches: readonly TokenBatch[]): EvaluationResult {
  if (batches.length === 0) throw new Error('evaluate: no validation batches were given');
  const seqLen = batches[0].seqLen;
  const other = batches.findIndex((batch) => batch.seqLen !== seqLen);
  if (other >= 0) {
    throw new Error(`evaluate: batches[${other}].seqLen is ${batches[other].seqLen}, but batches[0].seqLen is ${seqLen}; every validation batch must have the same sequence length.`);
  }
  const positionLossSums = new Array<number>(seqLen).fill(0);
  const positionCounts = new Array<number>(seqLen).fill(0);
  let bytes = 0;
  for (const batch of batches) {
    // One read per batch: row 0 contains the loss sums of each position over the batch, row 1 the counts.
    const perPosition = tf.tidy(() => {
      const inputs = tf.tensor2d(batch.inputs, [batch.batchSize, seqLen], 'int32');
      const targets = tf.tensor2d(batch.targets, [batch.batchSize, seqLen], 'int32');
      const output = model.forward(inputs, { training: false });
      const nll = tokenNegativeLogLikelihood(output.logits, targets);
      if (output.lossMask === undefined) {
        return tf.stack([tf.sum(nll, 0), tf.fill([seqLen], batch.batchSize)]).dataSync();
      }
      const mask = tf.cast(output.lossMask, 'float32');
      return tf.stack([tf.sum(tf.mul(nll, mask), 0), tf.sum(mask, 0)]).dataSync();
    });
    let count = 0;
    for (let t = 0; t < seqLen; t++) {
      positionLossSums[t] += perPosition[t];
      positionCounts[t] += perPosition[seqLen + t];
      count += perPosition[seqLen + t];
    }
    const batchTokens = batch.batchSize * seqLen;
    bytes += ((batch.targetBytes ?? batchTokens) * count) / batchTokens;
  }
  let lossSum = 0;
  let counted = 0;
  for (let t = 0; t < seqLen; t++) {
    lossSum += positionLossSums[t];
    counted += positionCounts[t];
  }
  const loss = counted > 0 ? lossSum / counted : NaN;
  return {
    loss,
    perplexity: Math.exp(loss),
    bitsPerByte: (loss / Math.LN2) * (counted / bytes),
    tokens: counted,
    positionLossSums,
    positionCounts,
  };
}

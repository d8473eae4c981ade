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
}

/**
 * Evaluates `model` in evaluation mode on `batches`, weighting each position that carries loss
 * equally (positions outside a model's `lossMask` do not count). Bytes of a batch are shared evenly
 * among its tokens for bits per byte, since a batch records only its total target bytes.
 */
export function evaluate(model: LanguageModel, batches: readonly TokenBatch[]): EvaluationResult {
  if (batches.length === 0) throw new Error('evaluate: no validation batches were given');
  let lossSum = 0;
  let counted = 0;
  let bytes = 0;
  for (const batch of batches) {
    const [sum, count] = tf.tidy(() => {
      const inputs = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], 'int32');
      const targets = tf.tensor2d(batch.targets, [batch.batchSize, batch.seqLen], 'int32');
      const output = model.forward(inputs, { training: false });
      const nll = tokenNegativeLogLikelihood(output.logits, targets);
      const mask = output.lossMask === undefined ? tf.onesLike(nll) : tf.cast(output.lossMask, 'float32');
      return [tf.sum(tf.mul(nll, mask)).dataSync()[0], tf.sum(mask).dataSync()[0]];
    });
    lossSum += sum;
    counted += count;
    const batchTokens = batch.batchSize * batch.seqLen;
    bytes += ((batch.targetBytes ?? batchTokens) * count) / batchTokens;
  }
  const loss = counted > 0 ? lossSum / counted : NaN;
  return {
    loss,
    perplexity: Math.exp(loss),
    bitsPerByte: (loss / Math.LN2) * (counted / bytes),
    tokens: counted,
  };
}

import { Rng, tf } from '@moebench/backend';
import type { Architecture, ForwardOutput, LanguageModel, ModelConfig } from '../src/index.js';

/** A config small enough for finite differences and profiling on the cpu backend. */
export const TINY: ModelConfig = { vocabSize: 11, dModel: 8, layers: 2, seqLen: 6, heads: 2, ffnHidden: 12, experts: 2 };

/** An architecture under test with its tiny config. */
export interface TestCase {
  name: string;
  architecture: Architecture;
  config: ModelConfig;
  /**
   * First t for which changing tokens after t must leave positions <= t unchanged in evaluation.
   * Default 0; sMoE partial prediction routes on the first P positions, so it is causal from P - 1.
   */
  causalFrom?: number;
}

/** The architectures under test. */
export const CASES: TestCase[] = [
  { name: 'transformer', architecture: 'transformer', config: TINY },
  { name: 'gmlp', architecture: 'gmlp', config: TINY },
  { name: 'switch', architecture: 'switch', config: TINY },
  { name: 'gshard', architecture: 'gshard', config: TINY },
  // Four experts leave room for second choices in evaluation, where dropping could break causality.
  { name: 'gshard with four experts', architecture: 'gshard', config: { ...TINY, experts: 4 } },
  // The default capacity factor 0 drops nothing, so the layer runs each expert on exactly its tokens.
  { name: 'hash', architecture: 'hash', config: TINY },
  { name: 'hash with capacity factor 1', architecture: 'hash', config: { ...TINY, hash: { capacityFactor: 1 } } },
  { name: 'base', architecture: 'base', config: TINY },
  { name: 'smlp', architecture: 'smlp', config: TINY },
  {
    name: 'smlp with partial prediction',
    architecture: 'smlp',
    // Prefix P = floor(0.3 x 10) = 3 positions.
    config: { ...TINY, seqLen: 10, smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 0.3 } } },
    causalFrom: 2,
  },
];

/** Random token ids [batch, time] from a seeded stream. */
export function randomTokens(seed: number, batch: number, time: number, vocabSize: number): tf.Tensor2D {
  const rng = new Rng(seed);
  const ids = Int32Array.from({ length: batch * time }, () => rng.int(vocabSize));
  return tf.tensor2d(ids, [batch, time], 'int32');
}

/**
 * Mean next-token cross-entropy over the positions that carry loss, plus the auxiliary loss. The
 * target of position t is the token at t + 1, so the last position carries no loss.
 */
export function languageModelLoss(output: ForwardOutput, tokens: tf.Tensor2D): tf.Scalar {
  const [batch, time] = tokens.shape;
  const vocab = output.logits.shape[2];
  const logits = tf.slice(output.logits, [0, 0, 0], [batch, time - 1, vocab]);
  const targets = tf.oneHot(tf.slice(tokens, [0, 1], [batch, time - 1]), vocab);
  const perPosition = tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1)); // [batch, time - 1]
  const mask = output.lossMask ? tf.slice(output.lossMask, [0, 0], [batch, time - 1]) : tf.onesLike(perPosition);
  const loss = tf.div(tf.sum(tf.mul(perPosition, mask)), tf.maximum(tf.sum(mask), 1));
  return tf.add(loss, output.auxLoss) as tf.Scalar;
}

/** Computes the loss of one forward pass and its gradient for every trainable variable. */
export function lossAndGradients(model: LanguageModel, tokens: tf.Tensor2D, training: boolean, stepSeed = 1) {
  return tf.variableGrads(() => languageModelLoss(model.forward(tokens, { training, stepSeed }), tokens), model.trainableVariables);
}

/** Logits of one evaluation pass as a plain array. */
export function evalLogits(model: LanguageModel, tokens: tf.Tensor2D): Float32Array {
  return tf.tidy(() => model.forward(tokens, { training: false }).logits).dataSync() as Float32Array;
}

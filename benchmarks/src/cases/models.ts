import { Rng, tf } from '@moebench/backend';
import { ARCHITECTURES, createModel, matchCompute, type Architecture, type LanguageModel, type ModelConfig } from '@moebench/models';
import type { BenchCase } from '../registry.js';

/**
 * The sizes of the default suite (suites/quick.yaml): byte-level vocabulary, sequences of 64 tokens
 * in batches of 16, 4 blocks of base width 64 with 4 heads and 4 experts, every architecture's widths
 * compute-matched to 500k forward FLOPs per token.
 */
const VOCAB = 256;
const SEQ_LEN = 64;
const BATCH = 16;
const TARGET_FLOPS_PER_TOKEN = 500_000;
const BASE_CONFIG: ModelConfig = { vocabSize: VOCAB, dModel: 64, layers: 4, seqLen: SEQ_LEN, heads: 4, experts: 4 };

/** Adam's hyperparameters for the update of the measured step. */
const LEARNING_RATE = 1e-3;
const BETA1 = 0.9;
const BETA2 = 0.95;
const EPSILON = 1e-8;

/**
 * One training step of a language model: forward in training mode, next-token cross-entropy plus
 * the auxiliary losses (positions outside the loss mask left out), backward, and an Adam update of
 * every variable. FLOPs are 3 x the model's forward FLOPs per token (accounting from its config)
 * x tokens, the usual forward + backward estimate. The optimiser is not counted.
 */
function trainingStepCase(architecture: Architecture): BenchCase {
  const match = matchCompute(TARGET_FLOPS_PER_TOKEN, BASE_CONFIG, { architectures: [architecture] })[architecture];
  const { dModel, ffnHidden } = match.config;
  const tokens = BATCH * SEQ_LEN;
  return {
    name: `train-step-${architecture}`,
    description:
      `${architecture} training step (forward, backward, Adam), ${BATCH} x ${SEQ_LEN} tokens, ` +
      `d=${dModel}, hidden=${ffnHidden}, ${match.accounting.forwardFlopsPerToken} forward FLOPs/token`,
    tokensPerStep: tokens,
    flopsPerStep: 3 * tokens * match.accounting.forwardFlopsPerToken,
    // The backends a suite trains on; the stock wasm and cpu backends would add minutes for seven models.
    variants: ['wasm-native', 'wasm', 'tensorflow'],
    prepare() {
      const model: LanguageModel = createModel(architecture, match.config, { seed: 0 });
      const rng = new Rng(`bench/train-step-${architecture}/data`);
      const ids = Int32Array.from({ length: BATCH * (SEQ_LEN + 1) }, () => rng.int(VOCAB));
      const inputs = tf.tensor2d(ids.filter((_, i) => i % (SEQ_LEN + 1) !== SEQ_LEN), [BATCH, SEQ_LEN], 'int32');
      const targets = tf.tensor2d(ids.filter((_, i) => i % (SEQ_LEN + 1) !== 0), [BATCH, SEQ_LEN], 'int32');
      const firstMoments = model.trainableVariables.map((variable) => tf.zerosLike(variable));
      const secondMoments = model.trainableVariables.map((variable) => tf.zerosLike(variable));
      let step = 0;

      return {
        run() {
          step++;
          const { value, grads } = tf.variableGrads(() => {
            const output = model.forward(inputs, { training: true, stepSeed: step });
            const logProbs = tf.logSoftmax(output.logits);
            const nll = tf.neg(tf.sum(tf.mul(logProbs, tf.oneHot(targets, VOCAB)), -1)); // [batch, seqLen]
            const mask = output.lossMask ?? tf.onesLike(nll);
            const crossEntropy = tf.div(tf.sum(tf.mul(nll, mask)), tf.maximum(tf.sum(mask), 1));
            return tf.add(crossEntropy, output.auxLoss) as tf.Scalar;
          }, model.trainableVariables);

          const correction1 = 1 - BETA1 ** step;
          const correction2 = 1 - BETA2 ** step;
          model.trainableVariables.forEach((variable, i) => {
            const gradient = grads[variable.name];
            const [m, v] = tf.tidy(() => [
              tf.add(tf.mul(firstMoments[i], BETA1), tf.mul(gradient, 1 - BETA1)),
              tf.add(tf.mul(secondMoments[i], BETA2), tf.mul(tf.square(gradient), 1 - BETA2)),
            ]);
            tf.dispose([firstMoments[i], secondMoments[i]]);
            firstMoments[i] = m;
            secondMoments[i] = v;
            tf.tidy(() => {
              const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), EPSILON));
              variable.assign(tf.sub(variable, tf.mul(update, LEARNING_RATE)));
            });
          });
          value.dataSync();
          model.trainableVariables[0].dataSync();
          tf.dispose([value, grads]);
        },
        dispose() {
          tf.dispose([inputs, targets, ...firstMoments, ...secondMoments]);
          model.dispose();
        },
      };
    },
  };
}

/** A training-step case for each of the seven architectures, compute-matched as the default suite. */
export const trainingStepCases: BenchCase[] = ARCHITECTURES.map(trainingStepCase);

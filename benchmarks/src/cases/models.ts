import { Rng, tf } from '@moebench/backend';
import { ARCHITECTURES, createModel, matchCompute, type Architecture, type ComputeMatch, type LanguageModel, type ModelConfig } from '@moebench/models';
import { AdamW, clipScale, maskedCrossEntropy } from '@moebench/train';
import type { BenchCase, PreparedStep } from '../registry.js';

/**
 * The sizes of the default suite (suites/quick.yaml): byte-level vocabulary, sequences of 64 tokens
 * in batches of 16, 4 blocks of base width 64 with 4 heads and 4 experts, every architecture's widths
 * compute-matched to 500k forward FLOPs per token.
 */
const VOCAB = 256;
const SEQ_LEN = 64;
/** Sequences per training step, the quick suite's batchSize. */
export const QUICK_BATCH = 16;
const TARGET_FLOPS_PER_TOKEN = 500_000;
const BASE_CONFIG: ModelConfig = { vocabSize: VOCAB, dModel: 64, layers: 4, seqLen: SEQ_LEN, heads: 4, experts: 4 };

/**
 * The quick suite's optimiser settings (suites/quick.yaml): AdamW with decay on variables of rank
 * >= 2, clipping to the global gradient norm. The learning rate is the schedule's peak, held constant,
 * since the schedule does not change a step's cost.
 */
export const QUICK_TRAINING = {
  learningRate: 0.003,
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  weightDecay: 0.1,
  gradientClipNorm: 1,
} as const;

/** Returns the compute match of `architecture` at the quick suite's size: its config and accounting. */
export function quickModelMatch(architecture: Architecture): ComputeMatch {
  return matchCompute(TARGET_FLOPS_PER_TOKEN, BASE_CONFIG, { architectures: [architecture] })[architecture];
}

/** A training step prepared by a `train-step-*` case, with what its last run measured. */
export interface TrainingStep extends PreparedStep {
  /** Loss (cross-entropy plus auxiliary loss) of the last run; NaN before the first. */
  readonly lastLoss: number;
  /** Global gradient norm before clipping, of the last run; NaN before the first. */
  readonly lastGradientNorm: number;
}

/**
 * One training step of a language model as the suite's trainer runs it (packages/train's loop).
 * The step runs the forward pass in training mode, `maskedCrossEntropy` plus the auxiliary losses,
 * the backward pass, `clipScale` at the quick suite's gradientClipNorm, and `AdamW.apply` with the
 * clipping scale. The update is skipped when the loss or the norm is not finite. FLOPs are 3 x the
 * model's forward FLOPs per token (accounting from its config) x tokens, the usual forward +
 * backward estimate. The optimiser is not counted.
 */
function trainingStepCase(architecture: Architecture): BenchCase {
  const match = quickModelMatch(architecture);
  const { dModel, ffnHidden } = match.config;
  const tokens = QUICK_BATCH * SEQ_LEN;
  return {
    name: `train-step-${architecture}`,
    description:
      `${architecture} training step (forward, backward, clipping, AdamW), ${QUICK_BATCH} x ${SEQ_LEN} tokens, ` +
      `d=${dModel}, hidden=${ffnHidden}, ${match.accounting.forwardFlopsPerToken} forward FLOPs/token`,
    tokensPerStep: tokens,
    flopsPerStep: 3 * tokens * match.accounting.forwardFlopsPerToken,
    // The backends a suite trains on, and wasm-blas to show what the fused kernels add; the stock
    // wasm and cpu backends would add minutes for seven models.
    variants: ['wasm-native', 'wasm-blas', 'wasm', 'tensorflow'],
    prepare: () => prepareTrainingStep(architecture, match.config, uniformIds),
  };
}

/** Share of the positions that hold the one frequent id in `skewedIds`. */
const FREQUENT_ID_SHARE = 0.6;

/**
 * Builds the HASH training step on skewed ids: 60% of the positions hold one id, the rest are uniform
 * over the vocabulary, so in every layer the busiest expert gets at least 60% of the tokens. That is the
 * load of the quick suite's HASH runs on the State of the Union corpus (56-64% on one expert), which
 * the evenly spread ids of `train-step-hash` do not show. Without a capacity factor HASH drops nothing
 * and runs each expert on exactly its tokens, so the step should cost about what `train-step-hash` costs.
 */
function buildSkewedHashStepCase(): BenchCase {
  const match = quickModelMatch('hash');
  const tokens = QUICK_BATCH * SEQ_LEN;
  return {
    name: 'train-step-hash-skewed',
    description:
      `hash training step as train-step-hash, with ${FREQUENT_ID_SHARE * 100}% of the positions on one id ` +
      `(the busiest expert gets >= ${FREQUENT_ID_SHARE * 100}% of each layer's tokens)`,
    tokensPerStep: tokens,
    flopsPerStep: 3 * tokens * match.accounting.forwardFlopsPerToken,
    variants: ['wasm-native', 'wasm-blas', 'wasm', 'tensorflow'],
    prepare: () => prepareTrainingStep('hash', match.config, skewedIds),
  };
}

/** Draws an id uniformly over the vocabulary. */
function uniformIds(rng: Rng): number {
  return rng.int(VOCAB);
}

/** Draws id 32 (a space in the byte tokenizer) with probability 0.6, else an id uniformly over the vocabulary. */
function skewedIds(rng: Rng): number {
  return rng.next() < FREQUENT_ID_SHARE ? 32 : rng.int(VOCAB);
}

function prepareTrainingStep(architecture: Architecture, config: ModelConfig, drawId: (rng: Rng) => number): TrainingStep {
  const model: LanguageModel = createModel(architecture, config, { seed: 0 });
  const variables = model.trainableVariables;
  const optimizer = new AdamW(variables, {
    beta1: QUICK_TRAINING.beta1,
    beta2: QUICK_TRAINING.beta2,
    epsilon: QUICK_TRAINING.epsilon,
    weightDecay: QUICK_TRAINING.weightDecay,
  });
  const rng = new Rng(`bench/train-step-${architecture}/data`);
  const ids = Int32Array.from({ length: QUICK_BATCH * (SEQ_LEN + 1) }, () => drawId(rng));
  const inputIds = ids.filter((_, i) => i % (SEQ_LEN + 1) !== SEQ_LEN);
  const targetIds = ids.filter((_, i) => i % (SEQ_LEN + 1) !== 0);
  let step = 0;
  let lastLoss = NaN;
  let lastGradientNorm = NaN;

  return {
    get lastLoss() {
      return lastLoss;
    },
    get lastGradientNorm() {
      return lastGradientNorm;
    },
    run() {
      step++;
      // The trainer uploads each batch, so the step does too.
      const inputs = tf.tensor2d(inputIds, [QUICK_BATCH, SEQ_LEN], 'int32');
      const targets = tf.tensor2d(targetIds, [QUICK_BATCH, SEQ_LEN], 'int32');
      let crossEntropy: tf.Scalar | null = null;
      let auxLoss: tf.Scalar | null = null;
      try {
        const { value, grads } = tf.variableGrads(() => {
          const output = model.forward(inputs, { training: true, stepSeed: step });
          crossEntropy = tf.keep(maskedCrossEntropy(output.logits, targets, output.lossMask));
          auxLoss = tf.keep(tf.cast(output.auxLoss, 'float32') as tf.Scalar);
          return tf.add(crossEntropy, auxLoss) as tf.Scalar;
        }, variables);
        const gradients = variables.map((variable) => {
          const gradient = grads[variable.name];
          if (gradient === undefined) throw new Error(`No gradient for variable "${variable.name}" of ${architecture}`);
          return gradient;
        });
        lastLoss = value.dataSync()[0];
        const clipped = clipScale(gradients, QUICK_TRAINING.gradientClipNorm);
        lastGradientNorm = clipped.norm;
        if (Number.isFinite(lastLoss) && Number.isFinite(clipped.norm)) {
          optimizer.apply(gradients, QUICK_TRAINING.learningRate, clipped.scale);
        }
        // The trainer reads both parts of the loss for its step metrics.
        (crossEntropy as tf.Scalar | null)?.dataSync();
        (auxLoss as tf.Scalar | null)?.dataSync();
        variables[0].dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      } finally {
        tf.dispose([inputs, targets]);
        if (crossEntropy) tf.dispose(crossEntropy);
        if (auxLoss) tf.dispose(auxLoss);
      }
    },
    dispose() {
      optimizer.dispose();
      model.dispose();
    },
  };
}

/** A training-step case for each of the seven architectures, compute-matched as the default suite. */
export const trainingStepCases: BenchCase[] = ARCHITECTURES.map(trainingStepCase);

/** `train-step-hash-skewed`: the HASH step on skewed ids (not a peer case: PyTorch has no counterpart). */
export const skewedHashStepCase: BenchCase = buildSkewedHashStepCase();

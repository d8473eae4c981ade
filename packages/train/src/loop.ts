import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NonFiniteError, releaseAbandonedTape, tf } from '@moebench/backend';
import type { ForwardOutput, LanguageModel } from '@moebench/models';
import { AdamW, type AdamWOptions } from './adamw.js';
import type { BatchSource, TokenBatch } from './batches.js';
import { budgetFraction, nextMark, progressIn, validateBudget, type Budget, type Progress } from './budget.js';
import { loadCheckpoint, writeCheckpoint, type LoopState } from './checkpoint.js';
import { clipScale } from './clip.js';
import { evaluate, type EvaluationResult } from './evaluate.js';
import { maskedCrossEntropy } from './loss.js';
import { learningRateAt, resolveSchedule, type ScheduleOptions } from './schedule.js';

/** Options of `train`. */
export interface TrainOptions {
  /** The model to train; its variables are updated in place. */
  model: LanguageModel;
  /** Training batches. */
  batches: BatchSource;
  /** Fixed validation batches, the same at every evaluation. */
  validation: readonly TokenBatch[];
  /** When training stops: after this many training seconds, tokens or steps. */
  budget: Budget;
  /** Evaluation interval, in any unit. An evaluation also runs at the start and at the end. */
  evaluationInterval: Budget;
  /** AdamW options (defaults in `AdamWOptions`). */
  optimizer?: AdamWOptions;
  /** Learning-rate schedule (defaults in `ScheduleOptions`). */
  schedule?: ScheduleOptions;
  /** Maximum global gradient norm; 0 or Infinity turns clipping off. Default 1. */
  gradientClipNorm?: number;
  /** Seed of the per-step random draws of the model (routing noise). Default 0. */
  seed?: number | string;
  /** Checkpoints: where and how often. Default: none. */
  checkpoint?: {
    /** Folder of this model's checkpoints. */
    dir: string;
    /** Interval between checkpoints; a checkpoint is also written when the run is interrupted. */
    interval: Budget;
    /** Checkpoints kept on disk. Default 1. */
    keep?: number;
  };
  /** Evaluate the initial weights before the first step of a fresh (not resumed) run. Default true. */
  evaluateAtStart?: boolean;
  /** Continue from the latest checkpoint in `checkpoint.dir` when there is one. Default false. */
  resume?: boolean;
  /** Stops the run between steps when aborted: a checkpoint is written and the status is `interrupted`. */
  signal?: AbortSignal;
  /** Called after each step. */
  onStep?: (metrics: StepMetrics) => void | Promise<void>;
  /** Called after each evaluation. */
  onEvaluation?: (metrics: EvaluationMetrics) => void | Promise<void>;
  /** Called after a checkpoint is written, with its folder and the loop state it holds. */
  onCheckpoint?: (checkpoint: { steps: number; path: string; state: LoopState }) => void | Promise<void>;
  /** Called once when training continues from a checkpoint, before any new step. */
  onResume?: (state: LoopState) => void | Promise<void>;
  /** Clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

/** Figures of one training step. */
export interface StepMetrics {
  /** Optimiser steps done, this one included (1 for the first step). */
  step: number;
  /** Training loss: cross-entropy plus auxiliary loss. */
  loss: number;
  /** Masked language-model cross-entropy, nats per token. */
  crossEntropy: number;
  /** Weighted auxiliary loss of the MoE layers (0 for dense models). */
  auxLoss: number;
  /** Learning rate this step used. */
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradientNorm: number;
  /** Training tokens consumed so far, this step included. */
  tokens: number;
  /** Tokens of this step divided by its wall-clock seconds. */
  tokensPerSecond: number;
  /** Wall-clock seconds of this step (batch preparation, forward, backward, update). */
  stepSeconds: number;
  /** Training seconds so far, evaluation and checkpoints excluded. */
  trainingSeconds: number;
  /** Routing statistics of each MoE layer for this step. */
  routing: ForwardOutput['routing'];
}

/** Figures of one evaluation. */
export interface EvaluationMetrics extends EvaluationResult {
  /** Optimiser steps done when it ran. */
  step: number;
  /** Training tokens consumed when it ran. */
  trainingTokens: number;
  /** Training seconds when it ran. */
  trainingSeconds: number;
  /** Wall-clock seconds this evaluation took. */
  evaluationSeconds: number;
}

/** Outcome of a training run. */
export interface TrainResult {
  /** `done`: budget spent; `diverged`: a non-finite loss or gradient; `interrupted`: the signal aborted it. */
  status: 'done' | 'diverged' | 'interrupted';
  /** Optimiser steps done. */
  steps: number;
  /** Training tokens consumed. */
  tokens: number;
  /** Training seconds, evaluation and checkpoints excluded. */
  trainingSeconds: number;
  /** Seconds spent evaluating. */
  evaluationSeconds: number;
  /** The last evaluation, or null when none ran. */
  lastEvaluation: EvaluationMetrics | null;
  /**
   * For `diverged`: the step whose loss or gradient norm was not finite, and those values. When the
   * forward pass itself met a non-finite value (a `NonFiniteError`), loss and gradient norm are NaN
   * and `message` names what was not finite.
   */
  divergence?: { step: number; loss: number; gradientNorm: number; message?: string };
  /** Steps already done in the checkpoint this run continued from, or null for a fresh start. */
  resumedFromStep: number | null;
}

/**
 * Trains `model` with AdamW, warmup plus cosine decay and global-norm clipping until the budget is
 * spent, evaluating on the fixed validation batches at the start, at every interval mark and at the
 * end.
 *
 * The training clock runs only during steps (batch preparation, forward, backward, update), so
 * evaluations, checkpoints and the callbacks do not count against a time budget. A step whose loss or
 * gradient norm is NaN or infinite, or whose forward pass throws a `NonFiniteError` (a router's
 * affinities overflowed), is not applied, and the run ends as `diverged` at that step. The
 * loop yields to the event loop after every step, so signal handlers get to run.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, batches, validation } = options;
  const budget = validateBudget('budget', options.budget);
  const evaluationInterval = validateBudget('evaluationInterval', options.evaluationInterval);
  const checkpointInterval = options.checkpoint ? validateBudget('checkpoint.interval', options.checkpoint.interval) : null;
  const schedule = resolveSchedule(options.schedule);
  const clipNorm = options.gradientClipNorm ?? 1;
  if (Number.isNaN(clipNorm) || clipNorm < 0) {
    throw new RangeError(`gradientClipNorm must be a number >= 0 (0 or Infinity: no clipping), received ${clipNorm}`);
  }
  if (validation.length === 0) throw new Error('train: validation must hold at least one batch');
  const seed = options.seed ?? 0;
  const now = options.now ?? (() => performance.now());

  const variables = model.trainableVariables;
  const optimizer = new AdamW(variables, options.optimizer);
  try {
    let state: LoopState = {
      steps: 0,
      tokens: 0,
      trainingSeconds: 0,
      evaluationSeconds: 0,
      warmupEndFraction: schedule.warmupSteps === 0 ? 0 : null,
      lastEvaluationStep: null,
      nextEvaluationAt: 0,
      nextCheckpointAt: 0,
      samplerPosition: batches.getPosition(),
    };
    const progress = (): Progress => ({ steps: state.steps, tokens: state.tokens, seconds: state.trainingSeconds });
    state.nextEvaluationAt = nextMark(evaluationInterval, progress());
    if (checkpointInterval) state.nextCheckpointAt = nextMark(checkpointInterval, progress());

    let resumedFromStep: number | null = null;
    if (options.resume && options.checkpoint) {
      const restored = await loadCheckpoint(options.checkpoint.dir, model, optimizer);
      if (restored !== null) {
        state = restored;
        batches.setPosition(state.samplerPosition);
        resumedFromStep = state.steps;
        await options.onResume?.(state);
      }
    }

    let lastEvaluation: EvaluationMetrics | null = null;
    const runEvaluation = async (): Promise<void> => {
      const start = now();
      const result = evaluate(model, validation);
      const seconds = (now() - start) / 1000;
      state.evaluationSeconds += seconds;
      state.lastEvaluationStep = state.steps;
      lastEvaluation = { ...result, step: state.steps, trainingTokens: state.tokens, trainingSeconds: state.trainingSeconds, evaluationSeconds: seconds };
      await options.onEvaluation?.(lastEvaluation);
      // Evaluation is synchronous, so a signal that arrived during it is handled only here; the
      // abort check then comes before the next step rather than after it.
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    let lastCheckpointStep = resumedFromStep;
    const saveCheckpoint = async (): Promise<void> => {
      if (!options.checkpoint || lastCheckpointStep === state.steps) return;
      lastCheckpointStep = state.steps;
      state.samplerPosition = batches.getPosition();
      const info = await writeCheckpoint(options.checkpoint.dir, model, optimizer, { ...state }, options.checkpoint.keep ?? 1);
      await options.onCheckpoint?.({ steps: info.steps, path: join(options.checkpoint.dir, info.folder), state: { ...state } });
    };
    const finish = (status: TrainResult['status'], divergence?: TrainResult['divergence']): TrainResult => ({
      status,
      steps: state.steps,
      tokens: state.tokens,
      trainingSeconds: state.trainingSeconds,
      evaluationSeconds: state.evaluationSeconds,
      lastEvaluation,
      resumedFromStep,
      ...(divergence ? { divergence } : {}),
    });

    if (resumedFromStep === null && options.evaluateAtStart !== false) await runEvaluation();

    while (budgetFraction(budget, progress()) < 1) {
      if (options.signal?.aborted) {
        await saveCheckpoint();
        return finish('interrupted');
      }

      const start = now();
      const batch = batches.next();
      if (state.warmupEndFraction === null && state.steps >= schedule.warmupSteps) {
        state.warmupEndFraction = budgetFraction(budget, progress());
      }
      const decayProgress = decayFraction(budgetFraction(budget, progress()), state.warmupEndFraction);
      const learningRate = learningRateAt(schedule, state.steps, decayProgress);
      let step: StepOutcome;
      try {
        step = runStep(model, optimizer, batch, learningRate, clipNorm, `${seed}/step/${state.steps}`);
      } catch (error) {
        if (!(error instanceof NonFiniteError)) throw error;
        return finish('diverged', { step: state.steps + 1, loss: NaN, gradientNorm: NaN, message: error.message });
      }
      const stepSeconds = (now() - start) / 1000;

      if (!Number.isFinite(step.loss) || !Number.isFinite(step.gradientNorm)) {
        return finish('diverged', { step: state.steps + 1, loss: step.loss, gradientNorm: step.gradientNorm });
      }

      const stepTokens = batch.batchSize * batch.seqLen;
      state.steps += 1;
      state.tokens += stepTokens;
      state.trainingSeconds += stepSeconds;
      await options.onStep?.({
        step: state.steps,
        loss: step.loss,
        crossEntropy: step.crossEntropy,
        auxLoss: step.auxLoss,
        learningRate,
        gradientNorm: step.gradientNorm,
        tokens: state.tokens,
        tokensPerSecond: stepSeconds > 0 ? stepTokens / stepSeconds : Infinity,
        stepSeconds,
        trainingSeconds: state.trainingSeconds,
        routing: step.routing,
      });

      const finished = budgetFraction(budget, progress()) >= 1;
      if (!finished && progressIn(evaluationInterval.unit, progress()) >= state.nextEvaluationAt) {
        await runEvaluation();
        state.nextEvaluationAt = nextMark(evaluationInterval, progress());
      }
      if (!finished && checkpointInterval && progressIn(checkpointInterval.unit, progress()) >= state.nextCheckpointAt) {
        state.nextCheckpointAt = nextMark(checkpointInterval, progress());
        await saveCheckpoint();
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }

    // A run resumed from its final checkpoint has already evaluated its last step.
    if (state.lastEvaluationStep !== state.steps) await runEvaluation();
    await saveCheckpoint();
    return finish('done');
  } finally {
    optimizer.dispose();
  }
}

// Maps the budget fraction to the cosine's progress, which starts at the end of warmup.
function decayFraction(fraction: number, warmupEndFraction: number | null): number {
  if (warmupEndFraction === null) return 0;
  if (warmupEndFraction >= 1) return 1;
  return (fraction - warmupEndFraction) / (1 - warmupEndFraction);
}

interface StepOutcome {
  loss: number;
  crossEntropy: number;
  auxLoss: number;
  gradientNorm: number;
  routing: ForwardOutput['routing'];
}

// One forward and backward pass and, when loss and gradients are finite, one AdamW update.
/** `tf.variableGrads`, which also frees the tensors the tape saved when `f` throws (tfjs keeps them). */
function variableGradsOrRelease(f: () => tf.Scalar, variables: tf.Variable[]): ReturnType<typeof tf.variableGrads> {
  try {
    return tf.variableGrads(f, variables);
  } catch (error) {
    releaseAbandonedTape();
    throw error;
  }
}

function runStep(model: LanguageModel, optimizer: AdamW, batch: TokenBatch, learningRate: number, clipNorm: number, stepSeed: string): StepOutcome {
  const variables = optimizer.variables as tf.Variable[];
  let routing: ForwardOutput['routing'] = [];
  let crossEntropy: tf.Scalar | null = null;
  let auxLoss: tf.Scalar | null = null;

  const inputs = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], 'int32');
  const targets = tf.tensor2d(batch.targets, [batch.batchSize, batch.seqLen], 'int32');
  try {
    const { value, grads } = variableGradsOrRelease(() => {
      const output = model.forward(inputs, { training: true, stepSeed });
      routing = output.routing;
      crossEntropy = tf.keep(maskedCrossEntropy(output.logits, targets, output.lossMask));
      auxLoss = tf.keep(tf.cast(output.auxLoss, 'float32') as tf.Scalar);
      return tf.add(crossEntropy, auxLoss) as tf.Scalar;
    }, variables);

    const gradients = variables.map((variable) => {
      const gradient = grads[variable.name];
      if (gradient === undefined) throw new Error(`No gradient for variable "${variable.name}": is it used by the forward pass?`);
      return gradient;
    });
    const loss = value.dataSync()[0];
    const clipped = clipScale(gradients, clipNorm);
    if (Number.isFinite(loss) && Number.isFinite(clipped.norm)) optimizer.apply(gradients, learningRate, clipped.scale);

    const outcome: StepOutcome = {
      loss,
      crossEntropy: (crossEntropy as tf.Scalar | null)?.dataSync()[0] ?? NaN,
      auxLoss: (auxLoss as tf.Scalar | null)?.dataSync()[0] ?? NaN,
      gradientNorm: clipped.norm,
      routing,
    };
    tf.dispose([value, ...Object.values(grads)]);
    return outcome;
  } finally {
    tf.dispose([inputs, targets]);
    if (crossEntropy) tf.dispose(crossEntropy);
    if (auxLoss) tf.dispose(auxLoss);
  }
}

import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { evaluate, learningRateAt, readCheckpointInfo, resolveSchedule, train, type EvaluationMetrics, type StepMetrics, type TrainOptions } from '../src/index.js';
import { patternTokens, TinyModel, windowBatch, WindowSource } from './tiny-model.js';

const VOCAB = 11;
const SEQ = 8;
const tokens = patternTokens(4000, VOCAB, 1);
const validation = [windowBatch(tokens, [0, 100, 200, 300], SEQ), windowBatch(tokens, [400, 500, 600, 700], SEQ)];
const scratch = mkdtempSync(join(tmpdir(), 'moebench-train-'));

beforeAll(async () => {
  await initBackend('cpu');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function options(model: TinyModel, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model,
    batches: new WindowSource(tokens, 4, SEQ, 7),
    validation,
    budget: { unit: 'steps', amount: 30 },
    evaluationInterval: { unit: 'steps', amount: 10 },
    schedule: { peakLearningRate: 0.05, warmupSteps: 5 },
    seed: 3,
    ...overrides,
  };
}

describe('train', () => {
  it('lowers validation loss on learnable text', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 8, seed: 1 });
    const evaluations: EvaluationMetrics[] = [];
    const result = await train(options(model, { onEvaluation: (metrics) => void evaluations.push(metrics) }));
    expect(result.status).toBe('done');
    expect(result.steps).toBe(30);
    expect(result.tokens).toBe(30 * 4 * SEQ);
    expect(evaluations.map((evaluation) => evaluation.step)).toEqual([0, 10, 20, 30]);
    expect(evaluations[0].loss).toBeGreaterThan(1.5);
    expect(evaluations[3].loss).toBeLessThan(evaluations[0].loss - 0.8);
    expect(evaluations[3].perplexity).toBeCloseTo(Math.exp(evaluations[3].loss), 6);
    expect(evaluations[3].bitsPerByte).toBeCloseTo(evaluations[3].loss / Math.LN2, 6);
    expect(result.lastEvaluation?.loss).toBe(evaluations[3].loss);
    model.dispose();
  });

  it('follows the schedule and reports each step', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 8, seed: 1 });
    const steps: StepMetrics[] = [];
    await train(options(model, { budget: { unit: 'steps', amount: 12 }, onStep: (metrics) => void steps.push(metrics) }));
    const schedule = resolveSchedule({ peakLearningRate: 0.05, warmupSteps: 5 });
    // Cosine progress after warmup is (step - 5) / (12 - 5) for a step budget.
    const expected = steps.map((_, index) => learningRateAt(schedule, index, Math.max(0, (index - 5) / 7)));
    steps.forEach((metrics, index) => expect(metrics.learningRate).toBeCloseTo(expected[index], 12));
    expect(steps.map((metrics) => metrics.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(steps[11].tokens).toBe(12 * 32);
    for (const metrics of steps) {
      expect(metrics.loss).toBeCloseTo(metrics.crossEntropy + metrics.auxLoss, 6);
      expect(metrics.gradientNorm).toBeGreaterThan(0);
      expect(metrics.tokensPerSecond).toBeGreaterThan(0);
    }
    model.dispose();
  });

  it('adds the auxiliary loss to the masked cross-entropy', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 8, seed: 1, maskBefore: 6, auxWeight: 2 });
    const steps: StepMetrics[] = [];
    // Warm the bias away from zero so the auxiliary loss is not zero.
    await train(options(model, { budget: { unit: 'steps', amount: 3 }, onStep: (metrics) => void steps.push(metrics) }));
    const second = steps[2];
    expect(second.auxLoss).toBeGreaterThan(0);
    expect(second.loss).toBeCloseTo(second.crossEntropy + second.auxLoss, 6);

    // Evaluation counts only the two positions of each row that the mask keeps.
    const masked = evaluate(model, validation);
    expect(masked.tokens).toBe(2 * 4 * 2);
    model.dispose();
  });

  it('stops a token budget at the first step that reaches it', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 2 });
    const result = await train(options(model, { budget: { unit: 'tokens', amount: 100 } }));
    expect(result.steps).toBe(4);
    expect(result.tokens).toBe(128);
    model.dispose();
  });

  it('counts only step time against a seconds budget', async () => {
    // Every clock read advances 250 ms, so each step and each evaluation lasts 0.25 s.
    let clock = 0;
    const now = (): number => (clock += 250);
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 2 });
    const evaluations: EvaluationMetrics[] = [];
    const result = await train(
      options(model, {
        now,
        budget: { unit: 'seconds', amount: 1 },
        evaluationInterval: { unit: 'seconds', amount: 0.5 },
        onEvaluation: (metrics) => void evaluations.push(metrics),
      }),
    );
    expect(result.steps).toBe(4);
    expect(result.trainingSeconds).toBe(1);
    expect(evaluations.map((evaluation) => evaluation.trainingSeconds)).toEqual([0, 0.5, 1]);
    expect(result.evaluationSeconds).toBe(0.75);
    model.dispose();
  });

  it('ends a run as diverged at the step whose loss is NaN', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 2, nanAtTrainingCall: 3 });
    const steps: StepMetrics[] = [];
    let before: number[][] = [];
    const result = await train(
      options(model, {
        onStep: (metrics) => {
          steps.push(metrics);
          if (metrics.step === 2) before = model.weights();
        },
      }),
    );
    expect(result.status).toBe('diverged');
    expect(result.divergence?.step).toBe(3);
    expect(result.divergence?.loss).toBeNaN();
    expect(result.steps).toBe(2);
    expect(steps).toHaveLength(2);
    expect(model.weights()).toEqual(before);
    model.dispose();
  });

  it('keeps the tensor count flat across steps', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 2, maskBefore: 2, auxWeight: 1 });
    const counts: number[] = [];
    const start = tf.memory().numTensors;
    await train(options(model, { budget: { unit: 'steps', amount: 8 }, onStep: () => void counts.push(tf.memory().numTensors) }));
    expect(new Set(counts).size).toBe(1);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('rejects a bad budget before training', async () => {
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 2 });
    await expect(train(options(model, { budget: { unit: 'epochs' as 'steps', amount: 1 } }))).rejects.toThrow(
      'budget.unit must be one of seconds, tokens, steps, received "epochs"',
    );
    await expect(train(options(model, { evaluationInterval: { unit: 'steps', amount: 2.5 } }))).rejects.toThrow(
      'evaluationInterval.amount must be an integer when counting steps, received 2.5',
    );
    await expect(train(options(model, { gradientClipNorm: -1 }))).rejects.toThrow('gradientClipNorm must be a number >= 0');
    expect(model.trainingCalls).toBe(0);
    model.dispose();
  });
});

describe('train with checkpoints', () => {
  const budget = { unit: 'steps', amount: 10 } as const;

  async function uninterrupted(): Promise<number[][]> {
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    await train(options(model, { budget }));
    const weights = model.weights();
    model.dispose();
    return weights;
  }

  it('resumes after an interruption to the same weights', async () => {
    const reference = await uninterrupted();
    const dir = join(scratch, 'interrupted');
    const controller = new AbortController();
    const first = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    const stopped = await train(
      options(first, {
        budget,
        checkpoint: { dir, interval: { unit: 'steps', amount: 4 } },
        signal: controller.signal,
        onStep: (metrics) => {
          if (metrics.step === 6) controller.abort();
        },
      }),
    );
    first.dispose();
    expect(stopped.status).toBe('interrupted');
    expect(stopped.steps).toBe(6);
    expect((await readCheckpointInfo(dir))?.steps).toBe(6);

    const second = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    const steps: number[] = [];
    const resumed = await train(options(second, { budget, checkpoint: { dir, interval: { unit: 'steps', amount: 4 } }, resume: true, onStep: (m) => void steps.push(m.step) }));
    expect(resumed.status).toBe('done');
    expect(resumed.resumedFromStep).toBe(6);
    expect(steps).toEqual([7, 8, 9, 10]);
    const weights = second.weights();
    weights.forEach((values, v) => values.forEach((value, i) => expect(value).toBeCloseTo(reference[v][i], 5)));
    second.dispose();
  });

  it('stops right after an aborted evaluation', async () => {
    const dir = join(scratch, 'aborted-in-evaluation');
    const controller = new AbortController();
    const model = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    // A signal handler runs on a later turn of the event loop, as setImmediate does here.
    const stopped = await train(
      options(model, {
        budget,
        checkpoint: { dir, interval: { unit: 'steps', amount: 4 } },
        signal: controller.signal,
        onEvaluation: () => void setImmediate(() => controller.abort()),
      }),
    );
    model.dispose();
    expect(stopped.status).toBe('interrupted');
    expect(stopped.steps).toBe(0);
    expect(stopped.lastEvaluation?.step).toBe(0);
  });

  it('does nothing when resumed at its end', async () => {
    const dir = join(scratch, 'finished');
    const first = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    await train(options(first, { budget, checkpoint: { dir, interval: { unit: 'steps', amount: 4 } } }));
    first.dispose();
    expect((await readCheckpointInfo(dir))?.steps).toBe(10);

    const second = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    let calls = 0;
    const count = (): void => void (calls += 1);
    const again = await train(options(second, { budget, checkpoint: { dir, interval: { unit: 'steps', amount: 4 } }, resume: true, onStep: count, onEvaluation: count, onCheckpoint: count }));
    expect(again.status).toBe('done');
    expect(again.steps).toBe(10);
    expect(calls).toBe(0);
    expect(second.trainingCalls).toBe(0);
    second.dispose();
  });

  it('resumes after a crash from the last interval checkpoint', async () => {
    const reference = await uninterrupted();
    const dir = join(scratch, 'crashed');
    const first = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    await expect(
      train(
        options(first, {
          budget,
          checkpoint: { dir, interval: { unit: 'steps', amount: 4 } },
          onStep: (metrics) => {
            if (metrics.step === 7) throw new Error('simulated crash');
          },
        }),
      ),
    ).rejects.toThrow('simulated crash');
    first.dispose();
    expect((await readCheckpointInfo(dir))?.steps).toBe(4);
    expect(readdirSync(dir).filter((name) => name.startsWith('step-'))).toEqual(['step-00000004']);

    const second = new TinyModel({ vocab: VOCAB, width: 4, seed: 5 });
    let resumedAt = -1;
    const resumed = await train(
      options(second, { budget, checkpoint: { dir, interval: { unit: 'steps', amount: 4 } }, resume: true, onResume: (state) => void (resumedAt = state.steps) }),
    );
    expect(resumedAt).toBe(4);
    expect(resumed.steps).toBe(10);
    second.weights().forEach((values, v) => values.forEach((value, i) => expect(value).toBeCloseTo(reference[v][i], 5)));
    expect(existsSync(join(dir, 'step-00000010'))).toBe(true);
    second.dispose();
  });
});

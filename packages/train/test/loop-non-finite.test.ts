import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, NonFiniteError, tf } from '@moebench/backend';
import type { ForwardOptions, ForwardOutput } from '@moebench/models';
import { train, type StepMetrics } from '../src/index.js';
import { patternTokens, TinyModel, windowBatch, WindowSource } from './tiny-model.js';

const VOCAB = 11;
const SEQ = 8;
const tokens = patternTokens(2000, VOCAB, 4);

/** A TinyModel whose n-th training forward throws, after making tensors, as a router with overflowed affinities does. */
class ThrowingModel extends TinyModel {
  constructor(
    private readonly throwAtCall: number,
    private readonly makeError: () => Error,
  ) {
    super({ vocab: VOCAB, width: 4, seed: 5 });
  }

  override forward(input: tf.Tensor2D, options: ForwardOptions): ForwardOutput {
    const output = super.forward(input, options);
    if (options.training && this.trainingCalls === this.throwAtCall) throw this.makeError();
    return output;
  }
}

function run(model: TinyModel, steps: StepMetrics[]) {
  return train({
    model,
    batches: new WindowSource(tokens, 4, SEQ, 2),
    validation: [windowBatch(tokens, [0, 50, 100, 150], SEQ)],
    budget: { unit: 'steps', amount: 10 },
    evaluationInterval: { unit: 'steps', amount: 5 },
    schedule: { peakLearningRate: 0.05, warmupSteps: 2 },
    seed: 1,
    onStep: (metrics) => void steps.push(metrics),
  });
}

beforeAll(async () => {
  await initBackend('cpu');
});
afterAll(() => tf.disposeVariables());

describe('a forward pass that meets a non-finite value', () => {
  it('ends the run as diverged at that step, with the error message as the reason', async () => {
    const model = new ThrowingModel(4, () => new NonFiniteError('balancedAssignment: affinity of token 0 for expert 1 is -Infinity'));
    const steps: StepMetrics[] = [];
    const before = tf.memory().numTensors;
    const result = await run(model, steps);
    expect(result.status).toBe('diverged');
    expect(result.steps).toBe(3);
    expect(steps.map((step) => step.step)).toEqual([1, 2, 3]);
    expect(result.divergence?.step).toBe(4);
    expect(result.divergence?.loss).toBeNaN();
    expect(result.divergence?.gradientNorm).toBeNaN();
    expect(result.divergence?.message).toBe('balancedAssignment: affinity of token 0 for expert 1 is -Infinity');
    // The thrown step's tensors, those its gradient tape saved included, are all released.
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('lets any other error out of the loop and leaves no tensors behind', async () => {
    const model = new ThrowingModel(2, () => new RangeError('an unrelated bug'));
    const before = tf.memory().numTensors;
    await expect(run(model, [])).rejects.toThrow('an unrelated bug');
    // Nothing is left behind: not the step's tensors, not its tape's, not the optimiser's moments.
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('NonFiniteError', () => {
  it('is a RangeError with its own name', () => {
    const error = new NonFiniteError('x is NaN');
    expect(error).toBeInstanceOf(RangeError);
    expect(error.name).toBe('NonFiniteError');
    expect(error.message).toBe('x is NaN');
  });
});

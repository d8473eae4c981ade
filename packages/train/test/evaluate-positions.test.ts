import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { createModel, type ForwardOutput, type LanguageModel } from '@moebench/models';
import { evaluate, type TokenBatch } from '../src/index.js';
import { patternTokens, windowBatch } from './tiny-model.js';

const VOCAB = 5;
const SEQ = 6;

beforeAll(async () => {
  await initBackend('cpu');
});

/**
 * A model whose logit for token 0 at position t is t / 2 and whose other logits are 0, whatever the
 * input. The first `masked` positions of each row are outside its lossMask.
 */
function positionalModel(masked: number): LanguageModel {
  const forward = (tokens: tf.Tensor2D): ForwardOutput => {
    const [batch, seqLen] = tokens.shape;
    const values = new Float32Array(batch * seqLen * VOCAB);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seqLen; t++) values[(b * seqLen + t) * VOCAB] = t / 2;
    }
    const logits = tf.tensor3d(values, [batch, seqLen, VOCAB]);
    const row = Array.from({ length: seqLen }, (_, t) => (t < masked ? 0 : 1));
    const lossMask = masked === 0 ? undefined : tf.tensor2d(Array.from({ length: batch }, () => row), [batch, seqLen], 'float32');
    return { logits, auxLoss: tf.scalar(0), routing: [], lossMask } as unknown as ForwardOutput;
  };
  return { forward } as unknown as LanguageModel;
}

/** Loss of `target` at position t under `positionalModel`: logsumexp of the logits minus the target's logit. */
function positionalLoss(t: number, target: number): number {
  const a = t / 2;
  return Math.log(Math.exp(a) + VOCAB - 1) - (target === 0 ? a : 0);
}

/** A batch of `rows` sequences whose targets are given row by row; inputs are all 0. */
function batchOf(targets: number[][]): TokenBatch {
  return {
    inputs: new Int32Array(targets.length * SEQ),
    targets: Int32Array.from(targets.flat()),
    batchSize: targets.length,
    seqLen: SEQ,
  };
}

const FIRST = batchOf([
  [0, 1, 2, 0, 4, 0],
  [3, 0, 0, 1, 0, 2],
]);
const SECOND = batchOf([[0, 0, 1, 1, 2, 0]]);

/** Hand-computed loss sums by position over FIRST and SECOND, with the first `masked` positions left out. */
function expectedSums(masked: number): number[] {
  const rows = [...[0, 1].map((row) => Array.from(FIRST.targets.slice(row * SEQ, (row + 1) * SEQ))), Array.from(SECOND.targets)];
  return Array.from({ length: SEQ }, (_, t) => (t < masked ? 0 : rows.reduce((sum, row) => sum + positionalLoss(t, row[t]), 0)));
}

describe('evaluate by position', () => {
  it('sums the loss of each position over every sequence of every batch', () => {
    const result = evaluate(positionalModel(0), [FIRST, SECOND]);
    const expected = expectedSums(0);
    // Position 0: logits all 0, so each of the three targets costs ln 5.
    expect(expected[0]).toBeCloseTo(3 * Math.log(5), 12);
    result.positionLossSums.forEach((sum, t) => expect(sum, `position ${t}`).toBeCloseTo(expected[t], 5));
    expect(result.positionCounts).toEqual([3, 3, 3, 3, 3, 3]);
    expect(result.tokens).toBe(18);
    expect(result.loss).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / 18, 6);
  });

  it('gives masked positions no loss and a count of 0', () => {
    const result = evaluate(positionalModel(2), [FIRST, SECOND]);
    const expected = expectedSums(2);
    expect(result.positionCounts).toEqual([0, 0, 3, 3, 3, 3]);
    expect(result.positionLossSums.slice(0, 2)).toEqual([0, 0]);
    result.positionLossSums.forEach((sum, t) => expect(sum, `position ${t}`).toBeCloseTo(expected[t], 5));
    expect(result.tokens).toBe(12);
    // The masked mean is the mean over positions 3 to 6 alone.
    expect(result.loss).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / 12, 6);
  });

  it('scores an unmasked model on a subset of positions exactly as the sums say', () => {
    const all = evaluate(positionalModel(0), [FIRST, SECOND]);
    const masked = evaluate(positionalModel(2), [FIRST, SECOND]);
    const subsetSum = all.positionLossSums.slice(2).reduce((a, b) => a + b, 0);
    const subsetCount = all.positionCounts.slice(2).reduce((a, b) => a + b, 0);
    expect(subsetSum / subsetCount).toBeCloseTo(masked.loss, 6);
  });

  it('rejects batches of different sequence lengths before evaluating', () => {
    const short: TokenBatch = { inputs: new Int32Array(4), targets: new Int32Array(4), batchSize: 1, seqLen: 4 };
    expect(() => evaluate(positionalModel(0), [FIRST, short])).toThrow(
      'evaluate: batches[1].seqLen is 4, but batches[0].seqLen is 6; every validation batch must have the same sequence length.',
    );
  });

  it('leaves no tensors behind, with and without a loss mask', () => {
    const before = tf.memory().numTensors;
    evaluate(positionalModel(0), [FIRST, SECOND]);
    evaluate(positionalModel(2), [FIRST, SECOND]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('evaluate by position with a partial-prediction sMLP', () => {
  it('matches a naive per-token reference and counts nothing inside the router prefix', () => {
    const vocab = 32;
    const seqLen = 10;
    const tokens = patternTokens(2000, vocab, 7);
    const model = createModel(
      'smlp',
      { vocabSize: vocab, dModel: 16, layers: 2, seqLen, heads: 2, experts: 2, smlp: { smoe: { routing: 'partial-prediction' } } },
      { seed: 3 },
    );
    const batches = [windowBatch(tokens, [0, 50, 100], seqLen), windowBatch(tokens, [300, 420], seqLen)];
    const result = evaluate(model, batches);

    // Reference: log-softmax of the logits read back and summed in float64, one token at a time.
    const sums = new Array<number>(seqLen).fill(0);
    const counts = new Array<number>(seqLen).fill(0);
    for (const batch of batches) {
      const read: { logits: number[][][]; mask: number[][] | null } = { logits: [], mask: null };
      tf.tidy(() => {
        const output = model.forward(tf.tensor2d(batch.inputs, [batch.batchSize, seqLen], 'int32'), { training: false });
        read.logits = output.logits.arraySync();
        read.mask = output.lossMask === undefined ? null : output.lossMask.arraySync();
      });
      const { logits, mask } = read;
      for (let b = 0; b < batch.batchSize; b++) {
        for (let t = 0; t < seqLen; t++) {
          if (mask !== null && mask[b][t] === 0) continue;
          const row = logits[b][t];
          const max = Math.max(...row);
          const logSumExp = max + Math.log(row.reduce((sum: number, value: number) => sum + Math.exp(value - max), 0));
          sums[t] += logSumExp - row[batch.targets[b * seqLen + t]];
          counts[t] += 1;
        }
      }
    }
    // The router prefix is max(1, floor(0.2 x 10)) = 2 positions.
    expect(counts).toEqual([0, 0, 5, 5, 5, 5, 5, 5, 5, 5]);
    expect(result.positionCounts).toEqual(counts);
    result.positionLossSums.forEach((sum, t) => expect(sum, `position ${t}`).toBeCloseTo(sums[t], 3));
    expect(result.tokens).toBe(40);
    expect(result.loss).toBeCloseTo(sums.reduce((a, b) => a + b, 0) / 40, 4);
    model.dispose();
  });
});

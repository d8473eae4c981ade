import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import type { ForwardOutput, LanguageModel } from '@moebench/models';
import { evaluate, type TokenBatch } from '../src/index.js';

const VOCAB = 11;

beforeAll(async () => {
  await initBackend('cpu');
});

// A model whose logits are all zero, so every target has probability 1 / VOCAB and a loss of ln(VOCAB) nats.
// With `maskFirstHalf`, the first half of each row carries no loss, as a model with a lossMask would.
function uniformModel(maskFirstHalf: boolean): LanguageModel {
  const forward = (tokens: tf.Tensor2D): ForwardOutput => {
    const [batch, seqLen] = tokens.shape;
    const logits = tf.zeros([batch, seqLen, VOCAB]) as tf.Tensor3D;
    const row = Array.from({ length: seqLen }, (_, t) => (maskFirstHalf && t < seqLen / 2 ? 0 : 1));
    const lossMask = tf.tensor2d(Array.from({ length: batch }, () => row), [batch, seqLen], 'float32');
    return { logits, auxLoss: tf.scalar(0), routing: [], lossMask } as unknown as ForwardOutput;
  };
  return { forward } as unknown as LanguageModel;
}

function batch(targetBytes: number): TokenBatch {
  const ids = Int32Array.from({ length: 8 }, (_, i) => i % VOCAB);
  return { inputs: ids, targets: ids, batchSize: 2, seqLen: 4, targetBytes };
}

describe('evaluate', () => {
  it('computes bits per byte from the target bytes', () => {
    // 16 target tokens decode to 20 + 12 = 32 bytes: log2(11) bits per token x 16 / 32 tokens per byte.
    const result = evaluate(uniformModel(false), [batch(20), batch(12)]);
    expect(result.loss).toBeCloseTo(Math.log(VOCAB), 5);
    expect(result.perplexity).toBeCloseTo(VOCAB, 4);
    expect(result.tokens).toBe(16);
    expect(result.bitsPerByte).toBeCloseTo(Math.log2(VOCAB) * (16 / 32), 5);
  });

  it('shares bytes evenly among counted tokens', () => {
    // Half of each batch counts: 8 tokens over (20 + 12) / 2 = 16 bytes.
    const result = evaluate(uniformModel(true), [batch(20), batch(12)]);
    expect(result.tokens).toBe(8);
    expect(result.bitsPerByte).toBeCloseTo(Math.log2(VOCAB) * (8 / 16), 5);
  });

  it('counts one byte per token without targetBytes', () => {
    const { targetBytes: _bytes, ...plain } = batch(0);
    const result = evaluate(uniformModel(false), [plain]);
    expect(result.bitsPerByte).toBeCloseTo(Math.log2(VOCAB), 5);
  });

  it('leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    evaluate(uniformModel(true), [batch(20)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

import { describe, expect, it } from 'vitest';
import { BatchSampler, evaluationBatches, prepareDataset, unigramCounts, type SamplerState } from '../src/index.js';

const tokens = Int32Array.from({ length: 1000 }, (_, i) => i % 256);

describe('BatchSampler', () => {
  it('makes targets the inputs shifted by one token', () => {
    const batch = new BatchSampler({ tokens, batchSize: 4, seqLen: 16, seed: 1 }).next();
    expect(batch.inputs.length).toBe(64);
    for (let row = 0; row < 4; row++) {
      const start = batch.starts[row];
      expect(start).toBeGreaterThanOrEqual(0);
      expect(start + 16).toBeLessThanOrEqual(tokens.length - 1);
      for (let t = 0; t < 16; t++) {
        expect(batch.inputs[row * 16 + t]).toBe(tokens[start + t]);
        expect(batch.targets[row * 16 + t]).toBe(tokens[start + t + 1]);
      }
    }
  });

  it('repeats batches for the same seed and differs for another', () => {
    const a = new BatchSampler({ tokens, batchSize: 8, seqLen: 8, seed: 'suite' });
    const b = new BatchSampler({ tokens, batchSize: 8, seqLen: 8, seed: 'suite' });
    const c = new BatchSampler({ tokens, batchSize: 8, seqLen: 8, seed: 'other' });
    for (let i = 0; i < 5; i++) {
      const batchA = a.next();
      expect(batchA.starts).toEqual(b.next().starts);
      expect(batchA.starts).not.toEqual(c.next().starts);
    }
  });

  it('resumes from a saved state exactly where it stopped', () => {
    const original = new BatchSampler({ tokens, batchSize: 4, seqLen: 8, seed: 3 });
    for (let i = 0; i < 7; i++) original.next();
    const state = JSON.parse(JSON.stringify(original.state()));
    expect(state).toEqual({ seed: 3, position: 7, batchSize: 4, seqLen: 8, tokenCount: 1000 });
    const resumed = BatchSampler.restore(tokens, state);
    for (let i = 0; i < 3; i++) expect(resumed.next().inputs).toEqual(original.next().inputs);
    expect(resumed.position).toBe(10);
  });

  it('rejects a state saved for other tokens', () => {
    const state = new BatchSampler({ tokens, batchSize: 4, seqLen: 8 }).state();
    expect(() => BatchSampler.restore(tokens.subarray(0, 500), state)).toThrow(/^state\.tokenCount: does not match the 500 tokens given/);
  });

  it('gives batch i from the seed and i alone', () => {
    const sampler = new BatchSampler({ tokens, batchSize: 2, seqLen: 4, seed: 9 });
    const third = sampler.batchAt(2);
    sampler.next();
    sampler.next();
    expect(sampler.next().starts).toEqual(third.starts);
  });

  it('draws window starts uniformly over the text', () => {
    const sampler = new BatchSampler({ tokens, batchSize: 50, seqLen: 10, seed: 5 });
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 80; i++) for (const start of sampler.next().starts) counts[Math.floor(start / 247.5)]++;
    // 4,000 draws in four equal bins: each within 10% of 1,000.
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(100);
  });

  it('rejects a corpus smaller than one batch', () => {
    expect(() => new BatchSampler({ tokens: tokens.subarray(0, 64), batchSize: 4, seqLen: 16 })).toThrow(
      'tokens: is smaller than one batch of 4 x 16 tokens (received "64 tokens"). Allowed: at least 65 tokens',
    );
  });

  it('rejects a bad batch shape', () => {
    expect(() => new BatchSampler({ tokens, batchSize: 0, seqLen: 8 })).toThrow('batchSize: must be an integer >= 1 (received 0). Allowed: an integer >= 1.');
    expect(() => new BatchSampler({ tokens, batchSize: 2, seqLen: 2.5 })).toThrow(/^seqLen: must be an integer >= 1 \(received 2.5\)/);
    expect(() => new BatchSampler({ tokens, batchSize: Number.NaN, seqLen: 8 })).toThrow(/^batchSize: must be an integer >= 1 \(received NaN\)/);
  });

  it('rejects a non-integer seed', () => {
    for (const seed of [Number.NaN, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => new BatchSampler({ tokens, batchSize: 2, seqLen: 4, seed })).toThrow(
        `seed: must be an integer or a string (received ${seed}). Allowed: an integer or a non-empty string.`,
      );
    }
  });

  it('rejects a null saved state', () => {
    expect(() => BatchSampler.restore(tokens, null as unknown as SamplerState)).toThrow(
      'state: must be a saved sampler state (received null). Allowed: the object BatchSampler.state() returned.',
    );
  });
});

describe('evaluationBatches', () => {
  it('takes every non-overlapping window when maxBatches allows', () => {
    // 1000 tokens hold floor(999 / 10) = 99 windows: 24 full batches of 4.
    const batches = evaluationBatches(tokens, { batchSize: 4, seqLen: 10 });
    expect(batches.length).toBe(24);
    const starts = batches.flatMap((batch) => batch.starts);
    expect(new Set(starts).size).toBe(96);
    starts.forEach((start) => expect(start % 10).toBe(0));
  });

  it('spaces windows evenly under maxBatches and repeats them', () => {
    const batches = evaluationBatches(tokens, { batchSize: 2, seqLen: 10, maxBatches: 2 });
    expect(batches.map((batch) => batch.starts)).toEqual([[0, 240], [490, 740]]);
    expect(evaluationBatches(tokens, { batchSize: 2, seqLen: 10, maxBatches: 2 })).toEqual(batches);
  });

  it('makes targets the inputs shifted by one token', () => {
    const [batch] = evaluationBatches(tokens, { batchSize: 1, seqLen: 5, maxBatches: 1 });
    expect(Array.from(batch.inputs)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(batch.targets)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('unigramCounts', () => {
  it('counts each token id', () => {
    expect(Array.from(unigramCounts(Int32Array.from([0, 2, 2, 3, 2]), 4))).toEqual([1, 0, 3, 1]);
  });

  it('sums to the training token count', () => {
    const dataset = prepareDataset({ corpus: 'brown' });
    const counts = dataset.unigramCounts();
    expect(counts.length).toBe(256);
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(dataset.train.tokenCount);
    expect(counts[' '.charCodeAt(0)]).toBeGreaterThan(counts['q'.charCodeAt(0)]);
  });

  it('rejects an id outside the vocabulary', () => {
    expect(() => unigramCounts(Int32Array.from([1, 300]), 256)).toThrow('tokens[1]: is outside the vocabulary (received 300)');
  });
});

describe('prepareDataset', () => {
  it('rejects a batch larger than the validation split', () => {
    expect(() => prepareDataset({ corpus: 'brown', batchSize: 4096, seqLen: 128 })).toThrow(
      /^corpus brown \(validation split\): is smaller than one batch of 4096 x 128 tokens \(received "305199 tokens"\)/,
    );
  });

  it('checks the batch shape before reading any corpus', () => {
    expect(() => prepareDataset({ corpus: { name: 'files', paths: ['/does/not/exist'] }, batchSize: -1, seqLen: 8 })).toThrow(/^batchSize:/);
  });
});

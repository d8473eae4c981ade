import { initBackend, tf } from '@moebench/backend';
import { describe, expect, it } from 'vitest';
import { createModel, resolveConfig, sparseBlockIndices, type LayerOptions } from '../src/index.js';
import { TINY } from './helpers.js';

describe('resolveConfig', () => {
  it('fills the documented defaults', () => {
    const transformer = resolveConfig('transformer', { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8 });
    expect(transformer).toMatchObject({ heads: 4, ffnHidden: 64, experts: 4, moeEvery: 2, initStd: 0.02, layerNormEpsilon: 1e-5 });
    expect(resolveConfig('gmlp', { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8 }).ffnHidden).toBe(48);
    expect(resolveConfig('smlp', { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8 }).ffnHidden).toBe(48);
  });

  it('names field, value and allowed range', () => {
    const base = { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8 };
    expect(() => resolveConfig('transformer', { ...base, dModel: 0 })).toThrow('dModel must be a positive integer, received 0');
    expect(() => resolveConfig('transformer', { ...base, layers: 1.5 })).toThrow('layers must be a positive integer, received 1.5');
    expect(() => resolveConfig('transformer', { ...base, seqLen: '8' as unknown as number })).toThrow('seqLen must be a positive integer, received "8"');
    expect(() => resolveConfig('transformer', { ...base, initStd: -1 })).toThrow('initStd must be a finite number above 0, received -1');
    expect(() => resolveConfig('transformer', { ...base, heads: 3 })).toThrow('heads must divide dModel (16), received heads = 3');
    expect(() => resolveConfig('switch', { ...base, moeEvery: 3 })).toThrow('moeEvery must be at most layers (2)');
    expect(() => resolveConfig('gshard', { ...base, experts: 1 })).toThrow('experts must be at least 2, received 1');
    expect(() => resolveConfig('switch', { ...base, switch: [] as unknown as LayerOptions })).toThrow('switch must be an options object, received an array');
  });

  it('rejects missing and unknown fields', () => {
    expect(() => resolveConfig('transformer', { vocabSize: 50, dModel: 16, layers: 2 } as never)).toThrow('seqLen is missing');
    expect(() => resolveConfig('transformer', { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8, width: 3 } as never)).toThrow(
      'unknown field "width". Valid fields: vocabSize, dModel',
    );
  });

  it('rejects layer options the model config sets', () => {
    const base = { vocabSize: 50, dModel: 16, layers: 2, seqLen: 8 };
    expect(() => resolveConfig('switch', { ...base, switch: { numExperts: 3 } })).toThrow(
      'switch.numExperts is set by the config field experts; remove it from switch.',
    );
    expect(() => resolveConfig('gmlp', { ...base, gmlp: { maxSeqLen: 4 } })).toThrow('gmlp.maxSeqLen is set by the config field seqLen');
    expect(resolveConfig('switch', { ...base, switch: { capacityFactor: 1.25 } }).switch).toEqual({ capacityFactor: 1.25 });
  });

  it('ignores heads outside the Transformer family', () => {
    expect(resolveConfig('gmlp', { vocabSize: 50, dModel: 10, layers: 2, seqLen: 8, heads: 3 }).dModel).toBe(10);
  });
});

describe('sparseBlockIndices', () => {
  it('places every moeEvery-th block counting from one', () => {
    expect(sparseBlockIndices({ layers: 6, moeEvery: 2 })).toEqual([1, 3, 5]);
    expect(sparseBlockIndices({ layers: 6, moeEvery: 3 })).toEqual([2, 5]);
    expect(sparseBlockIndices({ layers: 3, moeEvery: 1 })).toEqual([0, 1, 2]);
  });
});

describe('createModel', () => {
  it('rejects bad layer options without leaking tensors', async () => {
    await initBackend('cpu');
    const before = tf.memory().numTensors;
    expect(() => createModel('switch', { ...TINY, switch: { capacityFactor: 'high' } })).toThrow(/capacityFactor/);
    expect(() => createModel('gshard', { ...TINY, gshard: { secondExpertPolicy: 'best' } })).toThrow(/secondExpertPolicy/);
    expect(() => createModel('hash', { ...TINY, hash: { kind: 'balanced' } })).toThrow(/unigramCounts is missing/);
    expect(() => createModel('base', { ...TINY, base: { sublayers: 0 } })).toThrow(/sublayers/);
    expect(() => createModel('gmlp', { ...TINY, gmlp: { spatialInitEpsilon: -1 } })).toThrow(/spatialInitEpsilon/);
    expect(() => createModel('smlp', { ...TINY, smlp: { smoe: { routing: 'random' } } })).toThrow(/routing/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects an unknown architecture', () => {
    expect(() => createModel('rnn', TINY)).toThrow('Unknown architecture "rnn". Valid architectures: transformer, gmlp, gshard, switch, base, hash, smlp.');
  });
});

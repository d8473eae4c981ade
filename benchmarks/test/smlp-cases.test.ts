import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { createGmlpBlock } from '@moebench/smlp';
import { gmlpBlockCase, smlpSparseBlockCase } from '../src/cases/smlp.js';

describe('smlp bench cases', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('count FLOPs only when read', () => {
    for (const benchCase of [gmlpBlockCase, smlpSparseBlockCase]) {
      expect(Object.getOwnPropertyDescriptor(benchCase, 'flopsPerStep')?.get, benchCase.name).toBeTypeOf('function');
    }
  });

  it('read the gMLP count from a probe block and free it', () => {
    const reference = createGmlpBlock({ dModel: 256, maxSeqLen: 256, hiddenSize: 768, seed: 'test' });
    const expected = 3 * 2048 * reference.flopsPerToken(256);
    reference.dispose();
    const before = tf.memory().numTensors;
    expect(gmlpBlockCase.flopsPerStep).toBe(expected);
    expect(gmlpBlockCase.flopsPerStep).toBe(expected);
    expect(tf.memory().numTensors).toBe(before);
  });
});

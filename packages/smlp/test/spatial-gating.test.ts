import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createSpatialGatingUnit } from '../src/index.js';
import { maxAbsDiff, spatialGatingReference, toRows } from './reference.js';

describe.each(['cpu', 'wasm'])('spatial gating unit on %s', (backend) => {
  it('matches the plain reference with random weights', async () => {
    await initBackend(backend);
    const [batch, seqLen, h] = [2, 5, 3];
    const sgu = createSpatialGatingUnit({ hiddenSize: h, maxSeqLen: seqLen, seed: 1 });
    const rng = new Rng(5);
    const weight = rng.uniformArray(seqLen * seqLen, -1, 1);
    const bias = rng.uniformArray(seqLen, -1, 1);
    // Random values above the diagonal too: the mask must ignore them.
    sgu.trainableVariables[0].assign(tf.tensor2d(weight, [seqLen, seqLen]));
    sgu.trainableVariables[1].assign(tf.tensor1d(bias));
    const z = rng.uniformArray(batch * seqLen * 2 * h, -2, 2);

    const output = tf.tidy(() => sgu.apply(tf.tensor3d(z, [batch, seqLen, 2 * h])));
    expect(output.shape).toEqual([batch, seqLen, h]);

    const expected: number[] = [];
    for (let b = 0; b < batch; b++) {
      const rows = toRows(z.slice(b * seqLen * 2 * h, (b + 1) * seqLen * 2 * h), 2 * h);
      expected.push(...spatialGatingReference(rows, toRows(weight, seqLen), Array.from(bias)).flat());
    }
    expect(maxAbsDiff(await output.data(), expected)).toBeLessThan(1e-4);
    output.dispose();
    sgu.dispose();
  });

  it('uses the top-left block for shorter sequences', async () => {
    await initBackend(backend);
    const [maxSeqLen, seqLen, h] = [7, 4, 2];
    const sgu = createSpatialGatingUnit({ hiddenSize: h, maxSeqLen });
    const rng = new Rng(6);
    const weight = rng.uniformArray(maxSeqLen * maxSeqLen, -1, 1);
    const bias = rng.uniformArray(maxSeqLen, -1, 1);
    sgu.trainableVariables[0].assign(tf.tensor2d(weight, [maxSeqLen, maxSeqLen]));
    sgu.trainableVariables[1].assign(tf.tensor1d(bias));
    const z = rng.uniformArray(seqLen * 2 * h, -2, 2);

    const output = tf.tidy(() => sgu.apply(tf.tensor3d(z, [1, seqLen, 2 * h])));
    const expected = spatialGatingReference(toRows(z, 2 * h), toRows(weight, maxSeqLen), Array.from(bias)).flat();
    expect(maxAbsDiff(await output.data(), expected)).toBeLessThan(1e-4);
    output.dispose();
    sgu.dispose();
  });

  it('gives the same output time-major', async () => {
    await initBackend(backend);
    const sgu = createSpatialGatingUnit({ hiddenSize: 4, maxSeqLen: 6, seed: 2 });
    const z = new Rng(1).uniform([3, 6, 8], -1, 1) as tf.Tensor3D;
    const [batchMajor, timeMajor] = tf.tidy(() => [
      sgu.apply(z),
      tf.transpose(sgu.applyTimeMajor(tf.transpose(z, [1, 0, 2]) as tf.Tensor3D), [1, 0, 2]),
    ]);
    expect(maxAbsDiff(await batchMajor.data(), await timeMajor.data())).toBe(0);
    tf.dispose([z, batchMajor, timeMajor]);
    sgu.dispose();
  });

  it('gives the same values on the halves in time-major rows as on time-major input, and rejects rows seqLen does not divide', async () => {
    await initBackend(backend);
    const sgu = createSpatialGatingUnit({ hiddenSize: 4, maxSeqLen: 8, seed: 2 });
    const z = new Rng(1).uniform([6, 3, 8], -1, 1) as tf.Tensor3D; // [seqLen, batch, 2h]
    const [timeMajor, rows] = tf.tidy(() => [
      sgu.applyTimeMajor(z),
      tf.reshape(sgu.applyTimeMajorRows(...(tf.split(tf.reshape(z, [18, 8]), 2, 1) as [tf.Tensor2D, tf.Tensor2D]), 6), [6, 3, 4]),
    ]);
    expect(maxAbsDiff(await timeMajor.data(), await rows.data())).toBe(0);
    const odd = tf.zeros([17, 4]) as tf.Tensor2D;
    expect(() => sgu.applyTimeMajorRows(odd, odd, 6)).toThrow(/z1 must be \[seqLen \* batch, 4\] with seqLen = 6 .*received shape \[17, 4\]/);
    tf.dispose([z, timeMajor, rows, odd]);
    sgu.dispose();
  });

  it('starts with a small lower-triangular weight and unit bias', async () => {
    await initBackend(backend);
    const maxSeqLen = 16;
    const sgu = createSpatialGatingUnit({ hiddenSize: 2, maxSeqLen, seed: 3 });
    const weight = await sgu.trainableVariables[0].data();
    const bound = 1e-3 / maxSeqLen;
    let nonZeroBelow = 0;
    for (let row = 0; row < maxSeqLen; row++) {
      for (let col = 0; col < maxSeqLen; col++) {
        const value = weight[row * maxSeqLen + col];
        if (col > row) expect(value).toBe(0);
        expect(Math.abs(value)).toBeLessThanOrEqual(bound);
        if (col <= row && value !== 0) nonZeroBelow++;
      }
    }
    expect(nonZeroBelow).toBe((maxSeqLen * (maxSeqLen + 1)) / 2);
    expect(Array.from(await sgu.trainableVariables[1].data())).toEqual(new Array(maxSeqLen).fill(1));
    sgu.dispose();
  });

  it('leaves earlier outputs unchanged when later inputs change', async () => {
    await initBackend(backend);
    const [seqLen, h] = [8, 3];
    const sgu = createSpatialGatingUnit({ hiddenSize: h, maxSeqLen: seqLen, seed: 4 });
    sgu.trainableVariables[0].assign(new Rng(9).uniform([seqLen, seqLen], -1, 1) as tf.Tensor2D);
    const base = new Rng(10).uniformArray(seqLen * 2 * h, -1, 1);
    for (const t of [0, 3, 6]) {
      const changed = base.slice();
      for (let i = (t + 1) * 2 * h; i < changed.length; i++) changed[i] += 1;
      const [a, b] = tf.tidy(() => [sgu.apply(tf.tensor3d(base, [1, seqLen, 2 * h])), sgu.apply(tf.tensor3d(changed, [1, seqLen, 2 * h]))]);
      const prefixA = (await a.data()).slice(0, (t + 1) * h);
      const prefixB = (await b.data()).slice(0, (t + 1) * h);
      expect(maxAbsDiff(prefixA, prefixB)).toBe(0);
      expect(maxAbsDiff(await a.data(), await b.data())).toBeGreaterThan(0);
      tf.dispose([a, b]);
    }
    sgu.dispose();
  });
});

describe('spatial gating unit options', () => {
  it('rejects a bad hiddenSize, maxSeqLen and epsilon', async () => {
    await initBackend('cpu');
    expect(() => createSpatialGatingUnit({ hiddenSize: 0, maxSeqLen: 4 })).toThrow(
      'createSpatialGatingUnit: hiddenSize must be an integer >= 1, received 0',
    );
    expect(() => createSpatialGatingUnit({ hiddenSize: 2, maxSeqLen: 2.5 })).toThrow(
      'createSpatialGatingUnit: maxSeqLen must be an integer >= 1, received 2.5',
    );
    expect(() => createSpatialGatingUnit({ hiddenSize: 2, maxSeqLen: 4, seqLen: 4 } as never)).toThrow('createSpatialGatingUnit: unknown option "seqLen"');
    expect(() => createSpatialGatingUnit({ hiddenSize: 2, maxSeqLen: 4, spatialInitEpsilon: -1 })).toThrow(
      'createSpatialGatingUnit: spatialInitEpsilon must be a finite number > 0, received -1',
    );
  });

  it('rejects a sequence longer than maxSeqLen and a wrong width', async () => {
    await initBackend('cpu');
    const sgu = createSpatialGatingUnit({ hiddenSize: 2, maxSeqLen: 4 });
    const long = tf.zeros([1, 5, 4]) as tf.Tensor3D;
    const narrow = tf.zeros([1, 4, 3]) as tf.Tensor3D;
    expect(() => sgu.apply(long)).toThrow(/sequence length 5 is outside 1\.\.4/);
    expect(() => sgu.apply(narrow)).toThrow('SpatialGatingUnit.apply: input width must be 4, received shape [1, 4, 3]');
    tf.dispose([long, narrow]);
    sgu.dispose();
  });

  it('counts its parameters and mixing FLOPs', async () => {
    await initBackend('cpu');
    const sgu = createSpatialGatingUnit({ hiddenSize: 6, maxSeqLen: 10 });
    const stored = sgu.trainableVariables.reduce((sum, v) => sum + v.size, 0);
    expect(sgu.parameterCount()).toEqual({ total: stored, activePerToken: stored });
    expect(stored).toBe(10 * 10 + 10 + 2 * 6);
    expect(sgu.flopsPerToken()).toBe(2 * 10 * 6);
    expect(sgu.flopsPerToken(4)).toBe(2 * 4 * 6);
    sgu.dispose();
  });
});

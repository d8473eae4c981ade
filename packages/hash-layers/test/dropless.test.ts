import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { buildRandomTable, createHashLayer, hashRoute } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('hashRoute capacity', () => {
  it('marks plans dropless without a factor', () => {
    // Ids 0..5 under a fixed table, which sends four of the six tokens to expert 0.
    const table = { kind: 'random' as const, vocabSize: 6, numExperts: 2, experts: Int32Array.from([0, 0, 0, 0, 1, 1]) };
    const features = tf.zeros([6, 3]) as tf.Tensor2D;
    const plan = hashRoute(features, table, 0, { training: true, tokenIds: Int32Array.from([0, 1, 2, 3, 4, 5]) });
    expect(plan.dropless).toBe(true);
    expect(plan.capacity).toBe(4);
    expect(Array.from(plan.slots)).toEqual([0, 1, 2, 3, 0, 1]);
    tf.dispose([features, plan.gates]);
  });

  it('limits capacity with a positive factor', () => {
    const table = { kind: 'random' as const, vocabSize: 6, numExperts: 2, experts: Int32Array.from([0, 0, 0, 0, 1, 1]) };
    const features = tf.zeros([6, 3]) as tf.Tensor2D;
    const plan = hashRoute(features, table, 1, { training: true, tokenIds: Int32Array.from([0, 1, 2, 3, 4, 5]) });
    expect(plan.dropless).toBe(false);
    expect(plan.capacity).toBe(3);
    expect(Array.from(plan.slots)).toEqual([0, 1, 2, -1, 0, 1]);
    tf.dispose([features, plan.gates]);
  });
});

describe('HASH layer FLOPs', () => {
  const dModel = 8;
  const hiddenSize = 12;
  const row = 4 * dModel * hiddenSize;

  it.each([
    [0, 1],
    [-1, 1],
    [0.5, 0.5],
    [1.25, 1.25],
    // C = S once the factor reaches E = 4: nothing can be dropped and each token runs one row.
    [4, 1],
  ])('charges capacity factor %s as %s expert rows per token', (capacityFactor, rows) => {
    const layer = createHashLayer({ dModel, hiddenSize, numExperts: 4, vocabSize: 20, capacityFactor });
    expect(layer.flopsPerToken()).toBe(rows * row);
    layer.dispose();
  });

  it('runs one expert row per token on a skewed load', async () => {
    const table = buildRandomTable(20, 4, 1);
    const busy = Array.from(table.experts!).indexOf(0);
    expect(busy).toBeGreaterThanOrEqual(0);
    const layer = createHashLayer({ dModel, hiddenSize, numExperts: 4, vocabSize: 20, table });
    // 30 of 40 tokens carry an id of expert 0.
    const tokenIds = Int32Array.from({ length: 40 }, (_, index) => (index % 4 === 3 ? index % 20 : busy));
    const input = tf.ones([40, dModel]);

    const profile = await tf.profile(() => {
      const { output, auxLoss } = layer.apply(input, { training: true, tokenIds });
      auxLoss.dispose();
      return output;
    });
    tf.dispose(profile.result as tf.Tensor);
    let multiplyAdds = 0;
    for (const kernel of profile.kernels) {
      if (kernel.name !== 'BatchMatMul' && kernel.name !== '_FusedMatMul') continue;
      const [a] = kernel.inputShapes;
      multiplyAdds += a[a.length - 2] * a[a.length - 1] * kernel.outputShapes[0][kernel.outputShapes[0].length - 1];
    }
    expect(2 * multiplyAdds).toBe(40 * layer.flopsPerToken());
    input.dispose();
    layer.dispose();
  });
});

import { initBackend, Rng, tf } from '@moebench/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { countMatMulMultiplyAdds, createModel, resolveConfig, sparseBlockIndices, type Architecture, type ModelConfig } from '../src/index.js';
import { randomTokens, TINY } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const BATCH = 4;

/** Forward FLOPs per token that one training forward pass on `tokens` runs in matrix products. */
async function profiledFlopsPerToken(architecture: Architecture, config: ModelConfig, tokens: tf.Tensor2D): Promise<number> {
  const model = createModel(architecture, config, { seed: 12 });
  const count = await countMatMulMultiplyAdds(() => model.forward(tokens, { training: true, stepSeed: 1 }).logits);
  model.dispose();
  return (2 * count.multiplyAdds) / tokens.size;
}

/** A capacity router's model and the option block that sets its training capacity factor. */
interface CapacityCase {
  name: string;
  architecture: 'switch' | 'gshard' | 'hash';
  config: (capacityFactor: number) => ModelConfig;
}

const CAPACITY_CASES: CapacityCase[] = [
  { name: 'switch', architecture: 'switch', config: (capacityFactor) => ({ ...TINY, switch: { capacityFactor } }) },
  { name: 'gshard', architecture: 'gshard', config: (capacityFactor) => ({ ...TINY, gshard: { capacityFactor } }) },
  { name: 'gshard with four experts', architecture: 'gshard', config: (capacityFactor) => ({ ...TINY, experts: 4, gshard: { capacityFactor } }) },
  { name: 'hash', architecture: 'hash', config: (capacityFactor) => ({ ...TINY, hash: { capacityFactor } }) },
];

// TINY routes groups of S = 4 x 6 = 24 tokens over 2 or 4 experts, so k x S / E x factor is a whole
// number for each factor below, and the accounting is exact.
const FACTORS = [0.5, 1.25, 2];

describe.each(CAPACITY_CASES)('$name FLOPs with a capacity factor', ({ architecture, config }) => {
  it.each(FACTORS)('counts the buffer the forward pass runs at factor %s', async (capacityFactor) => {
    const tokens = randomTokens(7, BATCH, TINY.seqLen, TINY.vocabSize);
    const accounted = createModel(architecture, config(capacityFactor), { seed: 12 });
    const expected = accounted.accounting().forwardFlopsPerToken;
    accounted.dispose();
    expect(await profiledFlopsPerToken(architecture, config(capacityFactor), tokens)).toBe(expected);
    tokens.dispose();
  });
});

describe('capacity factor accounting', () => {
  it('charges the padding slots of a capacity buffer', () => {
    const flopsAt = (capacityFactor: number): number => {
      const model = createModel('switch', { ...TINY, experts: 4, switch: { capacityFactor } }, { seed: 1 });
      const flops = model.accounting().forwardFlopsPerToken;
      model.dispose();
      return flops;
    };
    // Each expert row costs 2 x (d f + f d) = 2 x 2 x 8 x 12 = 384 FLOPs, in every sparse block.
    const row = 2 * 2 * TINY.dModel * TINY.ffnHidden!;
    const blocks = sparseBlockIndices(resolveConfig('switch', TINY)).length;
    expect(blocks).toBeGreaterThan(0);
    expect(flopsAt(1.25) - flopsAt(1)).toBe(blocks * 0.25 * row);
    expect(flopsAt(2) - flopsAt(1)).toBe(blocks * 1 * row);
    expect(flopsAt(0.5) - flopsAt(1)).toBe(-blocks * 0.5 * row);
    // No capacity factor: nothing is dropped and each token runs its one expert once.
    expect(flopsAt(0)).toBe(flopsAt(1));
  });
});

describe('dropless HASH FLOPs', () => {
  it('counts one expert per token on skewed loads', async () => {
    // 70% of the positions hold id 3, so one expert gets most of each layer's tokens.
    const rng = new Rng(5);
    const ids = Int32Array.from({ length: BATCH * TINY.seqLen }, () => (rng.next() < 0.7 ? 3 : rng.int(TINY.vocabSize)));
    const tokens = tf.tensor2d(ids, [BATCH, TINY.seqLen], 'int32');
    const model = createModel('hash', TINY, { seed: 12 });
    const expected = model.accounting().forwardFlopsPerToken;
    model.dispose();

    expect(await profiledFlopsPerToken('hash', TINY, tokens)).toBe(expected);
    tokens.dispose();
  });
});

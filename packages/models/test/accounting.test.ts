import { initBackend } from '@moebench/backend';
import { createBaseLayer } from '@moebench/base-layers';
import { createGShardLayer } from '@moebench/gshard';
import { createHashLayer } from '@moebench/hash-layers';
import type { MoeLayer } from '@moebench/moe';
import { createGmlpBlock, createSparseBlock } from '@moebench/smlp';
import { createSwitchLayer } from '@moebench/switch';
import { beforeAll, describe, expect, it } from 'vitest';
import { accountModel, resolveConfig, sparseBlockIndices, type Architecture, type ModelConfig } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const CONFIG: ModelConfig = { vocabSize: 40, dModel: 16, layers: 4, seqLen: 12, heads: 2, ffnHidden: 24, experts: 4 };

/** The MoE layer of each kind at CONFIG's sizes, as the layer packages build and count it. */
const LAYERS: Array<[Architecture, () => { parameterCount(): { total: number; activePerToken: number }; dispose(): void }]> = [
  ['switch', () => createSwitchLayer({ dModel: 16, numExperts: 4, hiddenSize: 24 })],
  ['gshard', () => createGShardLayer({ dModel: 16, numExperts: 4, hiddenSize: 24 })],
  ['hash', () => createHashLayer({ dModel: 16, vocabSize: 40, numExperts: 4, hiddenSize: 24 })],
  ['base', () => createBaseLayer({ dModel: 16, numExperts: 4, hiddenSize: 24 })],
  ['smlp', () => createSparseBlock({ dModel: 16, maxSeqLen: 12, smoe: { numExperts: 4, hiddenSize: 24 }, tmoe: { numExperts: 4, hiddenSize: 24 } })],
];

describe('accountModel', () => {
  it('counts dense models as fully active', () => {
    for (const architecture of ['transformer', 'gmlp'] as const) {
      const accounting = accountModel(architecture, resolveConfig(architecture, CONFIG));
      expect(accounting.activeParametersPerToken, architecture).toBe(accounting.totalParameters);
    }
  });

  it.each(LAYERS)('leaves out the unused %s experts per token', (architecture, build) => {
    const layer = build();
    const { total, activePerToken } = layer.parameterCount();
    const sparseBlocks = sparseBlockIndices(resolveConfig(architecture, CONFIG)).length;
    const accounting = accountModel(architecture, resolveConfig(architecture, CONFIG));
    expect(total - activePerToken).toBeGreaterThan(0);
    expect(accounting.totalParameters - accounting.activeParametersPerToken).toBe(sparseBlocks * (total - activePerToken));
    layer.dispose();
  });

  it.each(LAYERS.filter(([architecture]) => architecture !== 'smlp'))('matches the %s layer FLOPs', (architecture, build) => {
    const layer = build() as unknown as MoeLayer;
    const sparse = accountModel(architecture, resolveConfig(architecture, CONFIG));
    const dense = accountModel('transformer', resolveConfig('transformer', CONFIG));
    // A sparse block's FFN costs 2 x (d f + f d) in the dense model; the MoE layer replaces it.
    const denseFeedForward = 2 * 2 * 16 * 24;
    const sparseBlocks = sparseBlockIndices(resolveConfig(architecture, CONFIG)).length;
    expect(sparse.forwardFlopsPerToken).toBe(dense.forwardFlopsPerToken + sparseBlocks * (layer.flopsPerToken() - denseFeedForward));
    layer.dispose();
  });

  it('matches the gMLP and sMLP block FLOPs', () => {
    const gmlpBlock = createGmlpBlock({ dModel: 16, maxSeqLen: 12, hiddenSize: 24 });
    const sparseBlock = createSparseBlock({ dModel: 16, maxSeqLen: 12, smoe: { numExperts: 4, hiddenSize: 24 }, tmoe: { numExperts: 4, hiddenSize: 24 } });
    const head = 2 * 16 * 40;
    const gmlp = accountModel('gmlp', resolveConfig('gmlp', CONFIG));
    expect(gmlp.forwardFlopsPerToken).toBe(4 * gmlpBlock.flopsPerToken() + head);
    expect(gmlp.totalParameters).toBe(4 * gmlpBlock.parameterCount().total + 40 * 16 + 2 * 16);
    const smlp = accountModel('smlp', resolveConfig('smlp', CONFIG));
    expect(smlp.forwardFlopsPerToken).toBe(2 * gmlpBlock.flopsPerToken() + 2 * sparseBlock.flopsPerToken() + head);
    expect(smlp.totalParameters).toBe(2 * gmlpBlock.parameterCount().total + 2 * sparseBlock.parameterCount().total + 40 * 16 + 2 * 16);
    gmlpBlock.dispose();
    sparseBlock.dispose();
  });
});

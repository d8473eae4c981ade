import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { createModel } from '@moebench/models';
import { train, type StepMetrics } from '../src/index.js';
import { patternTokens, windowBatch, WindowSource } from './tiny-model.js';

const VOCAB = 32;
const SEQ = 8;
const tokens = patternTokens(3000, VOCAB, 4);
const config = { vocabSize: VOCAB, dModel: 16, layers: 2, seqLen: SEQ, heads: 2, experts: 4 };

beforeAll(async () => {
  await initBackend('wasm');
});

describe('train with real models on wasm', () => {
  for (const architecture of ['switch', 'smlp'] as const) {
    it(`trains ${architecture} with flat tensor count`, async () => {
      const model = createModel(architecture, config, { seed: 1 });
      const steps: StepMetrics[] = [];
      const counts: number[] = [];
      const result = await train({
        model,
        batches: new WindowSource(tokens, 4, SEQ, 2),
        validation: [windowBatch(tokens, [0, 64, 128, 192], SEQ)],
        budget: { unit: 'steps', amount: 12 },
        evaluationInterval: { unit: 'steps', amount: 6 },
        schedule: { peakLearningRate: 0.01, warmupSteps: 2 },
        onStep: (metrics) => {
          steps.push(metrics);
          counts.push(tf.memory().numTensors);
        },
      });
      expect(result.status).toBe('done');
      expect(new Set(counts).size).toBe(1);
      expect(steps[11].loss).toBeLessThan(steps[0].loss);
      for (const metrics of steps) expect(Number.isFinite(metrics.gradientNorm)).toBe(true);
      model.dispose();
    });
  }

  it('passes routing statistics of each MoE layer through', async () => {
    const model = createModel('switch', config, { seed: 1 });
    const steps: StepMetrics[] = [];
    await train({
      model,
      batches: new WindowSource(tokens, 4, SEQ, 2),
      validation: [windowBatch(tokens, [0, 64], SEQ)],
      budget: { unit: 'steps', amount: 2 },
      evaluationInterval: { unit: 'steps', amount: 2 },
      onStep: (metrics) => void steps.push(metrics),
    });
    const routing = steps[0].routing;
    expect(routing.map((entry) => entry.layer)).toEqual(['block1.moe']);
    const stats = routing[0].stats;
    expect(stats.tokensPerExpert).toHaveLength(4);
    expect(stats.tokensPerExpert.reduce((sum, count) => sum + count, 0)).toBe(4 * SEQ);
    expect(steps[0].auxLoss).toBeGreaterThan(0);
    model.dispose();
  });
});

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { ARCHITECTURES } from '@moebench/models';
import { QUICK_BATCH, QUICK_TRAINING, trainingStepCases, type TrainingStep } from '../src/cases/models.js';

const QUICK_SUITE = fileURLToPath(new URL('../../suites/quick.yaml', import.meta.url));

/** Reads a `key: number` line of the quick suite's YAML. */
function suiteNumber(key: string): number {
  const match = readFileSync(QUICK_SUITE, 'utf8').match(new RegExp(`^\\s*${key}:\\s*([0-9.e+-]+)\\s*$`, 'm'));
  if (match === null) throw new Error(`suites/quick.yaml has no "${key}: <number>" line`);
  return Number(match[1]);
}

describe('training-step bench cases', () => {
  it('covers seven architectures at suite size', () => {
    expect(trainingStepCases.map((benchCase) => benchCase.name)).toEqual(ARCHITECTURES.map((architecture) => `train-step-${architecture}`));
    for (const benchCase of trainingStepCases) {
      expect(benchCase.tokensPerStep, benchCase.name).toBe(16 * 64);
      const forwardPerToken = benchCase.flopsPerStep / 3 / benchCase.tokensPerStep;
      expect(Math.abs(forwardPerToken - 500_000) / 500_000, benchCase.name).toBeLessThanOrEqual(0.05);
    }
  });

  it('run with and without the fused kernels', () => {
    for (const benchCase of trainingStepCases) {
      expect(benchCase.variants, benchCase.name).toEqual(['wasm-native', 'wasm-blas', 'wasm', 'tensorflow']);
    }
  });

  it('use the quick suite optimiser settings', () => {
    expect(QUICK_BATCH).toBe(suiteNumber('batchSize'));
    expect(QUICK_TRAINING.learningRate).toBe(suiteNumber('learningRate'));
    expect(QUICK_TRAINING.beta1).toBe(suiteNumber('beta1'));
    expect(QUICK_TRAINING.beta2).toBe(suiteNumber('beta2'));
    expect(QUICK_TRAINING.weightDecay).toBe(suiteNumber('weightDecay'));
    expect(QUICK_TRAINING.gradientClipNorm).toBe(suiteNumber('gradientClipNorm'));
  });
});

describe('training step on wasm', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  for (const architecture of ['transformer', 'smlp'] as const) {
    it(`lowers the ${architecture} loss without leaks`, () => {
      const benchCase = trainingStepCases.find((candidate) => candidate.name === `train-step-${architecture}`)!;
      const before = tf.memory().numTensors;
      const step = benchCase.prepare() as TrainingStep;
      expect(step.lastLoss).toBeNaN();
      const losses: number[] = [];
      const norms: number[] = [];
      const afterFirst: number[] = [];
      for (let i = 0; i < 4; i++) {
        step.run();
        losses.push(step.lastLoss);
        norms.push(step.lastGradientNorm);
        afterFirst.push(tf.memory().numTensors);
      }
      step.dispose();

      // Byte-level targets start near ln(256) = 5.55 nats, and each step fits the same batch better.
      expect(losses[0]).toBeGreaterThan(5);
      expect(losses[0]).toBeLessThan(6);
      expect(losses[3]).toBeLessThan(losses[0]);
      for (const norm of norms) expect(norm).toBeGreaterThan(0);
      expect(new Set(afterFirst).size).toBe(1);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

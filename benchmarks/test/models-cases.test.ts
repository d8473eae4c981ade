import { describe, expect, it } from 'vitest';
import { ARCHITECTURES } from '@moebench/models';
import { trainingStepCases } from '../src/cases/models.js';

describe('training-step bench cases', () => {
  it('covers seven architectures at suite size', () => {
    expect(trainingStepCases.map((benchCase) => benchCase.name)).toEqual(ARCHITECTURES.map((architecture) => `train-step-${architecture}`));
    for (const benchCase of trainingStepCases) {
      expect(benchCase.tokensPerStep, benchCase.name).toBe(16 * 64);
      const forwardPerToken = benchCase.flopsPerStep / 3 / benchCase.tokensPerStep;
      expect(Math.abs(forwardPerToken - 500_000) / 500_000, benchCase.name).toBeLessThanOrEqual(0.05);
    }
  });
});

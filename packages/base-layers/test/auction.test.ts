import { describe, expect, it } from 'vitest';
import { Rng } from '@moebench/backend';
import { balancedAssignment, greedyAssignment } from '../src/index.js';
import { exactBalancedAssignment } from './hungarian.js';

function randomAffinities(rng: Rng, tokens: number, experts: number): Float32Array {
  return rng.normalArray(tokens * experts);
}

function totalAffinity(affinities: ArrayLike<number>, assignment: Int32Array, experts: number): number {
  let total = 0;
  for (let s = 0; s < assignment.length; s++) total += affinities[s * experts + assignment[s]];
  return total;
}

function loads(assignment: Int32Array, experts: number): number[] {
  const counts = new Array<number>(experts).fill(0);
  for (const expert of assignment) counts[expert]++;
  return counts;
}

/**
 * Finds the optimum by enumerating every balanced assignment (each expert gets capacity or
 * capacity - 1 tokens), to check the Hungarian reference itself.
 */
function bruteForceOptimum(affinities: ArrayLike<number>, tokens: number, experts: number): number {
  const capacity = Math.ceil(tokens / experts);
  const counts = new Array<number>(experts).fill(0);
  let best = -Infinity;
  const visit = (token: number, total: number): void => {
    if (token === tokens) {
      if (counts.every((count) => count >= capacity - 1)) best = Math.max(best, total);
      return;
    }
    for (let e = 0; e < experts; e++) {
      if (counts[e] === capacity) continue;
      counts[e]++;
      visit(token + 1, total + affinities[token * experts + e]);
      counts[e]--;
    }
  };
  visit(0, 0);
  return best;
}

describe('exact reference solver', () => {
  it('matches enumeration on tiny cases', () => {
    const rng = new Rng('hungarian');
    for (const [tokens, experts] of [[4, 2], [6, 3], [7, 3], [5, 2], [6, 2], [7, 4], [9, 4], [5, 4]]) {
      const affinities = randomAffinities(rng, tokens, experts);
      const exact = exactBalancedAssignment(affinities, tokens, experts);
      expect(exact.total).toBeCloseTo(bruteForceOptimum(affinities, tokens, experts), 5);
      expect(totalAffinity(affinities, exact.experts, experts)).toBeCloseTo(exact.total, 5);
    }
  });
});

describe('balancedAssignment', () => {
  it('solves a hand-computed two-token case', () => {
    // Both tokens prefer expert 0; token 1 loses 1 by moving, token 0 would lose 3.
    const result = balancedAssignment(new Float32Array([3, 0, 2, 1]), 2, 2);
    expect(Array.from(result.experts)).toEqual([0, 1]);
    expect(result.capacity).toBe(1);
  });

  it('solves a hand-computed case where greedy overloads one expert', () => {
    // Greedy sends tokens 0, 1 and 2 to expert 0. The optimum keeps the two with the largest
    // margins (0 and 2: margins 4 and 3) and moves token 1 (margin 1) and token 3 stays on 1.
    const affinities = new Float32Array([5, 1, 2, 1, 4, 1, 0, 2]);
    const result = balancedAssignment(affinities, 4, 2);
    expect(Array.from(result.experts)).toEqual([0, 1, 0, 1]);
  });

  it('fills every expert exactly when tokens divide evenly', () => {
    const rng = new Rng('fill');
    for (const [tokens, experts] of [[64, 8], [96, 4], [50, 50], [30, 1], [256, 16]]) {
      const result = balancedAssignment(randomAffinities(rng, tokens, experts), tokens, experts);
      expect(loads(result.experts, experts)).toEqual(new Array(experts).fill(tokens / experts));
    }
  });

  it('leaves at most one slot per expert to padding otherwise', () => {
    const rng = new Rng('padding');
    for (const [tokens, experts] of [[10, 4], [13, 8], [9, 2], [100, 7], [9, 8], [2049, 8]]) {
      const result = balancedAssignment(randomAffinities(rng, tokens, experts), tokens, experts);
      const capacity = Math.ceil(tokens / experts);
      expect(result.capacity).toBe(capacity);
      const counts = loads(result.experts, experts);
      expect(counts.reduce((sum, count) => sum + count, 0)).toBe(tokens);
      for (const count of counts) {
        expect(count).toBeLessThanOrEqual(capacity);
        expect(count).toBeGreaterThanOrEqual(capacity - 1);
      }
    }
  });

  it('stays within tokens x epsilon of the exact optimum', () => {
    const rng = new Rng('optimum');
    const cases: Array<[number, number, number | undefined]> = [
      [8, 2, undefined],
      [12, 3, 0.05],
      [12, 4, 0.5],
      [16, 4, undefined],
      [15, 4, 0.01],
      [18, 6, 0.1],
      [20, 5, undefined],
      [24, 8, 0.02],
      [10, 8, undefined],
      [21, 4, 0.05],
    ];
    for (let trial = 0; trial < 3; trial++) {
      for (const [tokens, experts, epsilon] of cases) {
        const affinities = randomAffinities(rng, tokens, experts);
        const result = balancedAssignment(affinities, tokens, experts, epsilon === undefined ? {} : { epsilon });
        const exact = exactBalancedAssignment(affinities, tokens, experts);
        const paddedTokens = result.capacity * experts;
        const achieved = totalAffinity(affinities, result.experts, experts);
        expect(achieved).toBeLessThanOrEqual(exact.total + 1e-9);
        expect(achieved).toBeGreaterThanOrEqual(exact.total - paddedTokens * result.epsilon - 1e-9);
      }
    }
  });

  it('scales the default epsilon with the affinity spread', () => {
    const affinities = new Float32Array([0, 2, 1, 1, 3, 0, 1, 1]);
    expect(balancedAssignment(affinities, 4, 2).epsilon).toBeCloseTo(3e-4, 12);
    expect(balancedAssignment(affinities, 4, 2, { relativeEpsilon: 0.01 }).epsilon).toBeCloseTo(0.03, 12);
    expect(balancedAssignment(affinities, 4, 2, { epsilon: 0.5, relativeEpsilon: 0.01 }).epsilon).toBe(0.5);
  });

  it('reaches the exact optimum on inputs with well-separated totals', () => {
    // Integer affinities: every suboptimal assignment is at least 1 worse, so any epsilon below
    // 1 / tokens must give an optimal one.
    const rng = new Rng('integers');
    for (let trial = 0; trial < 5; trial++) {
      const tokens = 12;
      const experts = 3;
      const affinities = new Float32Array(tokens * experts).map(() => rng.int(20));
      const result = balancedAssignment(affinities, tokens, experts, { epsilon: 0.9 / tokens });
      expect(totalAffinity(affinities, result.experts, experts)).toBe(exactBalancedAssignment(affinities, tokens, experts).total);
    }
  });

  it('handles tokens with identical affinities', () => {
    const row = [0.3, -0.1, 0.7, 0.2];
    const tokens = 64;
    const affinities = new Float32Array(tokens * 4).map((_, i) => row[i % 4]);
    const result = balancedAssignment(affinities, tokens, 4);
    expect(loads(result.experts, 4)).toEqual([16, 16, 16, 16]);

    const constant = balancedAssignment(new Float32Array(tokens * 4).fill(2), tokens, 4);
    expect(loads(constant.experts, 4)).toEqual([16, 16, 16, 16]);
  });

  it('ignores a constant offset of the affinities', () => {
    const affinities = randomAffinities(new Rng('offset'), 40, 4);
    const shifted = affinities.map((value) => value + 1000);
    expect(balancedAssignment(shifted, 40, 4).experts).toEqual(balancedAssignment(affinities, 40, 4).experts);
  });

  it('is deterministic', () => {
    const affinities = randomAffinities(new Rng('determinism'), 512, 8);
    const first = balancedAssignment(affinities, 512, 8);
    const second = balancedAssignment(affinities.slice(), 512, 8);
    expect(second.experts).toEqual(first.experts);
    expect(second.bids).toBe(first.bids);
  });

  it('rejects invalid input with the value and what is allowed', () => {
    const affinities = new Float32Array(8);
    expect(() => balancedAssignment(affinities, 2, 4)).toThrow('experts (4) must not exceed tokens (2)');
    expect(() => balancedAssignment(affinities, 3, 2)).toThrow('affinities has length 8, expected tokens * experts = 3 * 2 = 6');
    expect(() => balancedAssignment(affinities, 0, 2)).toThrow('tokens must be a positive integer, received 0');
    expect(() => balancedAssignment(affinities, 4, 2.5)).toThrow('experts must be a positive integer, received 2.5');
    expect(() => balancedAssignment(new Float32Array([0, NaN, 1, 2]), 2, 2)).toThrow('affinity of token 0 for expert 1 is NaN');
    expect(() => balancedAssignment(affinities, 4, 2, { epsilon: 0 })).toThrow('epsilon must be a finite number greater than 0, received 0');
    expect(() => balancedAssignment(affinities, 4, 2, { relativeEpsilon: -1 })).toThrow(
      'relativeEpsilon must be a finite number greater than 0, received -1',
    );
    expect(() => balancedAssignment(affinities, 4, 2, { epsilonScaling: 1 })).toThrow(
      'epsilonScaling must be a finite number greater than 1, received 1',
    );
  });
});

describe('greedyAssignment', () => {
  it('takes each token to its argmax expert, ties to the lower index', () => {
    const affinities = new Float32Array([1, 3, 2, 5, 5, 0, -1, -2, -1]);
    expect(Array.from(greedyAssignment(affinities, 3, 3))).toEqual([1, 0, 0]);
  });
});

import { describe, expect, it } from 'vitest';
import { NonFiniteError } from '@moebench/backend';
import { balancedAssignment, maxScoreAssignment } from '../src/index.js';

describe('non-finite affinities', () => {
  it.each([NaN, Infinity, -Infinity])('balancedAssignment throws a NonFiniteError for %s', (bad) => {
    const affinities = Float32Array.from([0.5, 0.1, 0.2, bad, 0.3, 0.4, 0.0, 0.9]);
    expect(() => balancedAssignment(affinities, 4, 2)).toThrow(NonFiniteError);
    expect(() => balancedAssignment(affinities, 4, 2)).toThrow(`affinity of token 1 for expert 1 is ${bad}; affinities must be finite`);
  });

  it('maxScoreAssignment throws a NonFiniteError for an infinite score', () => {
    expect(() => maxScoreAssignment([1, 2, -Infinity, 0], 2)).toThrow(NonFiniteError);
  });

  it('other bad input stays a plain RangeError', () => {
    let caught: unknown;
    try {
      balancedAssignment(new Float32Array(3), 4, 2);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RangeError);
    expect(caught).not.toBeInstanceOf(NonFiniteError);
  });
});

import { maxScoreAssignment } from '../src/index.js';

/*
 * Exact reference for the balanced assignment, for tests only: the Hungarian algorithm
 * (`maxScoreAssignment`) on the expanded square problem, where each expert is repeated `capacity`
 * times. Padding tokens may only take the last slot of an expert (affinity 0), so every expert
 * receives `capacity` or `capacity - 1` real tokens.
 */

/**
 * Returns the maximal total affinity of assigning `tokens` tokens to `experts` experts with
 * `ceil(tokens / experts)` slots each and at most one slot per expert left empty, and one optimal
 * assignment (expert per token).
 *
 * @param affinities [tokens, experts] row-major.
 */
export function exactBalancedAssignment(
  affinities: ArrayLike<number>,
  tokens: number,
  experts: number,
): { total: number; experts: Int32Array } {
  const capacity = Math.ceil(tokens / experts);
  const n = capacity * experts;

  // Column j is slot j % capacity of expert j / capacity. A cost far above any sum of affinities
  // keeps padding rows off the regular slots.
  let forbidden = 1;
  for (let i = 0; i < tokens * experts; i++) forbidden += Math.abs(affinities[i]);
  forbidden *= 4;
  const cost = (row: number, column: number): number => {
    if (row >= tokens) return column % capacity === capacity - 1 ? 0 : forbidden;
    return -affinities[row * experts + Math.floor(column / capacity)];
  };

  const scores = new Float64Array(n * n);
  for (let row = 0; row < n; row++) for (let column = 0; column < n; column++) scores[row * n + column] = -cost(row, column);
  const slotOf = maxScoreAssignment(scores, n);

  const assignment = new Int32Array(tokens);
  let total = 0;
  for (let token = 0; token < tokens; token++) {
    const expert = Math.floor(slotOf[token] / capacity);
    assignment[token] = expert;
    total += affinities[token * experts + expert];
  }
  return { total, experts: assignment };
}

/**
 * Exact reference for the balanced assignment, for tests only: the Hungarian algorithm (shortest
 * augmenting paths with row and column potentials, O(n^3)) on the expanded square problem, where
 * each expert is repeated `capacity` times. Padding tokens may only take the last slot of an
 * expert (affinity 0), so every expert receives `capacity` or `capacity - 1` real tokens.
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

  // Minimisation form: cost[row][column] = -affinity, where column j is slot j % capacity of expert
  // j / capacity. A cost far above any sum of affinities keeps padding rows off the regular slots.
  let forbidden = 1;
  for (let i = 0; i < tokens * experts; i++) forbidden += Math.abs(affinities[i]);
  forbidden *= 4;
  const cost = (row: number, column: number): number => {
    if (row >= tokens) return column % capacity === capacity - 1 ? 0 : forbidden;
    return -affinities[row * experts + Math.floor(column / capacity)];
  };

  // 1-based arrays; column 0 is the virtual start of each augmenting path.
  const rowPotential = new Float64Array(n + 1);
  const columnPotential = new Float64Array(n + 1);
  const rowOfColumn = new Int32Array(n + 1);
  const previousColumn = new Int32Array(n + 1);
  for (let row = 1; row <= n; row++) {
    rowOfColumn[0] = row;
    let column = 0;
    const minimumSlack = new Float64Array(n + 1).fill(Infinity);
    const visited = new Uint8Array(n + 1);
    do {
      visited[column] = 1;
      const currentRow = rowOfColumn[column];
      let delta = Infinity;
      let nextColumn = 0;
      for (let j = 1; j <= n; j++) {
        if (visited[j]) continue;
        const slack = cost(currentRow - 1, j - 1) - rowPotential[currentRow] - columnPotential[j];
        if (slack < minimumSlack[j]) {
          minimumSlack[j] = slack;
          previousColumn[j] = column;
        }
        if (minimumSlack[j] < delta) {
          delta = minimumSlack[j];
          nextColumn = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (visited[j]) {
          rowPotential[rowOfColumn[j]] += delta;
          columnPotential[j] -= delta;
        } else {
          minimumSlack[j] -= delta;
        }
      }
      column = nextColumn;
    } while (rowOfColumn[column] !== 0);
    do {
      const previous = previousColumn[column];
      rowOfColumn[column] = rowOfColumn[previous];
      column = previous;
    } while (column !== 0);
  }

  const assignment = new Int32Array(tokens);
  let total = 0;
  for (let column = 1; column <= n; column++) {
    const token = rowOfColumn[column] - 1;
    if (token >= tokens) continue;
    const expert = Math.floor((column - 1) / capacity);
    assignment[token] = expert;
    total += affinities[token * experts + expert];
  }
  return { total, experts: assignment };
}

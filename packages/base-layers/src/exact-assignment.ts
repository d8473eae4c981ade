/**
 * Exact maximum-weight assignment of n items to n slots (the Hungarian method with potentials,
 * O(n^3)). sMLP's sMoE routes the chunks of one sequence to experts one-to-one with it, and the BASE
 * tests check the auction against it on the expanded token x slot matrix.
 */
import { NonFiniteError } from '@moebench/backend';

/**
 * Returns `slotOf`, where item i goes to slot slotOf[i], maximising the sum of scores[i * n + slot]
 * over a one-to-one assignment. `scores` is a row-major n x n matrix of finite numbers.
 */
export function maxScoreAssignment(scores: ArrayLike<number>, n: number): Int32Array {
  if (!Number.isInteger(n) || n < 1 || scores.length !== n * n) {
    throw new RangeError(`maxScoreAssignment: scores must hold n * n values for an integer n >= 1, received ${scores.length} values and n = ${n}`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new NonFiniteError(`maxScoreAssignment: scores must be finite, received ${scores[i]} at index ${i}`);
  }
  // Minimise the negated scores. Arrays are 1-based; row 0 and column 0 are the virtual start.
  const cost = (row: number, col: number): number => -scores[(row - 1) * n + (col - 1)];
  const rowPotential = new Float64Array(n + 1);
  const colPotential = new Float64Array(n + 1);
  const rowOfCol = new Int32Array(n + 1);
  const previousCol = new Int32Array(n + 1);

  for (let row = 1; row <= n; row++) {
    rowOfCol[0] = row;
    let col0 = 0;
    const minSlack = new Float64Array(n + 1).fill(Infinity);
    const used = new Uint8Array(n + 1);
    do {
      used[col0] = 1;
      const row0 = rowOfCol[col0];
      let delta = Infinity;
      let col1 = 0;
      for (let col = 1; col <= n; col++) {
        if (used[col]) continue;
        const slack = cost(row0, col) - rowPotential[row0] - colPotential[col];
        if (slack < minSlack[col]) {
          minSlack[col] = slack;
          previousCol[col] = col0;
        }
        if (minSlack[col] < delta) {
          delta = minSlack[col];
          col1 = col;
        }
      }
      for (let col = 0; col <= n; col++) {
        if (used[col]) {
          rowPotential[rowOfCol[col]] += delta;
          colPotential[col] -= delta;
        } else {
          minSlack[col] -= delta;
        }
      }
      col0 = col1;
    } while (rowOfCol[col0] !== 0);
    // Augment along the alternating path back to the virtual column.
    do {
      const col1 = previousCol[col0];
      rowOfCol[col0] = rowOfCol[col1];
      col0 = col1;
    } while (col0 !== 0);
  }

  const slotOf = new Int32Array(n);
  for (let col = 1; col <= n; col++) slotOf[rowOfCol[col] - 1] = col - 1;
  return slotOf;
}

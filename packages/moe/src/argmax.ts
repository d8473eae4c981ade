/**
 * Returns the index of the largest value of each row of `values` [rows, columns]; ties go to the
 * lowest index, as tf.argMax does. When `exclude` is given, column exclude[row] is skipped in that row
 * (GShard's second choice masks out the first).
 */
export function argmaxRows(
  values: ArrayLike<number>,
  rows: number,
  columns: number,
  exclude?: Int32Array,
): Int32Array {
  const result = new Int32Array(rows);
  for (let row = 0; row < rows; row++) {
    const skipped = exclude === undefined ? -1 : exclude[row];
    let best = -1;
    for (let column = 0; column < columns; column++) {
      if (column === skipped) continue;
      if (best === -1 || values[row * columns + column] > values[row * columns + best]) best = column;
    }
    result[row] = best;
  }
  return result;
}

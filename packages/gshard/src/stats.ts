/**
 * Routing figures as fairseq's top-2 gate logs them, in percent of the S tokens unless named a count.
 * Loads are counted before capacity.
 * - overflowFirstPercent, overflowSecondPercent: first (second) choices dropped by capacity, in percent
 *   of the first (second) choices sent, so second choices the random policy skipped are not counted;
 * - skippedSecondPercent: second choices the random policy did not send;
 * - unusedFirstExperts, unusedSecondExperts: experts that no first (second) choice picked;
 * - busiestShareFirstPercent, idlestShareFirstPercent: tokens whose first choice is one of the busiest
 *   (idlest) 20% of experts, at least one expert.
 */
export function gshardStats(
  experts: Int32Array,
  slots: Int32Array,
  numExperts: number,
  skippedSecond: number,
): Record<string, number> {
  const tokens = experts.length / 2;
  const firstCounts = new Array<number>(numExperts).fill(0);
  const secondCounts = new Array<number>(numExperts).fill(0);
  let overflowFirst = 0;
  let overflowSecond = 0;
  for (let token = 0; token < tokens; token++) {
    firstCounts[experts[2 * token]]++;
    if (slots[2 * token] < 0) overflowFirst++;
    const second = experts[2 * token + 1];
    if (second < 0) continue;
    secondCounts[second]++;
    if (slots[2 * token + 1] < 0) overflowSecond++;
  }

  const sorted = [...firstCounts].sort((a, b) => b - a);
  const group = Math.max(1, Math.ceil(0.2 * numExperts));
  const share = (counts: number[]) => (100 * counts.reduce((sum, count) => sum + count, 0)) / tokens;
  return {
    overflowFirstPercent: (100 * overflowFirst) / tokens,
    overflowSecondPercent: tokens === skippedSecond ? 0 : (100 * overflowSecond) / (tokens - skippedSecond),
    skippedSecondPercent: (100 * skippedSecond) / tokens,
    unusedFirstExperts: firstCounts.filter((count) => count === 0).length,
    unusedSecondExperts: secondCounts.filter((count) => count === 0).length,
    busiestShareFirstPercent: share(sorted.slice(0, group)),
    idlestShareFirstPercent: share(sorted.slice(numExperts - group)),
  };
}

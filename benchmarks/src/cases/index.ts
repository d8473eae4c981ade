/**
 * Registers every bench case. To add one: write `cases/<name>.ts` exporting a `BenchCase`, and add
 * it to the list below.
 */
import { registerCase } from '../registry.js';
import { baseAuctionCases, baseLayerCase } from './base-layers.js';
import { denseFfnCase } from './dense-ffn.js';
import { moeLayerCases } from './moe-layers.js';
import { gmlpBlockCase, smlpSparseBlockCase } from './smlp.js';
import { skewedHashStepCase, trainingStepCases } from './models.js';
import { slicingCase } from './slicing.js';

for (const benchCase of [
  denseFfnCase,
  slicingCase,
  ...moeLayerCases,
  baseLayerCase,
  ...baseAuctionCases,
  gmlpBlockCase,
  smlpSparseBlockCase,
  ...trainingStepCases,
  skewedHashStepCase,
]) {
  registerCase(benchCase);
}

/**
 * Registers every bench case. To add one: write `cases/<name>.ts` exporting a `BenchCase`, and add
 * it to the list below.
 */
import { registerCase } from '../registry.js';
import { baseAuctionCases, baseLayerCase } from './base-layers.js';
import { denseFfnCase } from './dense-ffn.js';
import { moeLayerCases } from './moe-layers.js';

for (const benchCase of [denseFfnCase, ...moeLayerCases, baseLayerCase, ...baseAuctionCases]) registerCase(benchCase);

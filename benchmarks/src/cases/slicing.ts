import { Rng, tf } from '@moebench/backend';
import type { BenchCase } from '../registry.js';

/** Rows, width, experts and hidden width of the slicing case: a routed layer's sizes at d = 256. */
const ROWS = 4096;
const D_MODEL = 256;
const EXPERTS = 8;
const D_FF = 1024;

/**
 * The per-expert cuts of the dropless MoE path (packages/moe/src/grouped.ts) at a routed layer's
 * size: `tf.split` of the gathered rows [4096, 256] into 8 uneven expert blocks, and `tf.unstack`
 * of an [8, 256, 1024] weight bank into its experts' matrices, so the pieces together hold each
 * element of both inputs once. On stock wasm each piece's Slice first copies the whole input off the
 * heap, 8 times per call here; the replacement copies only the piece. The step reads back the last
 * piece only, so that the readback does not swamp the cuts. No FLOPs are counted, so GFLOP/s reads
 * 0: compare ms/step.
 */
export const slicingCase: BenchCase = {
  name: 'slice-split-unstack',
  description: `tf.split of [${ROWS}, ${D_MODEL}] rows into ${EXPERTS} uneven blocks + tf.unstack of an [${EXPERTS}, ${D_MODEL}, ${D_FF}] weight bank`,
  tokensPerStep: ROWS,
  flopsPerStep: 0,
  // Stock wasm shows the copies the replacement saves; a step there takes tens of milliseconds.
  variants: ['wasm-native', 'wasm', 'wasm-stock'],
  prepare() {
    const rng = new Rng('bench/slice-split-unstack');
    const rows = rng.normalTensor([ROWS, D_MODEL]);
    const bank = rng.normalTensor([EXPERTS, D_MODEL, D_FF], 0, 0.02);
    // Uneven loads, as a router leaves them: 4096 rows over 8 experts, the busiest with 3x the idlest.
    const sizes = [768, 256, 640, 384, 512, 448, 576, 512];
    return {
      run() {
        tf.tidy(() => {
          const pieces = [...tf.split(rows, sizes, 0), ...tf.unstack(bank)];
          // The backends run kernels in the order they are issued, so reading the last piece waits for all of them.
          pieces[pieces.length - 1].dataSync();
        });
      },
      dispose() {
        tf.dispose([rows, bank]);
      },
    };
  },
};

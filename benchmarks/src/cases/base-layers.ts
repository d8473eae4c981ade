import { Rng, tf } from '@moebench/backend';
import { balancedAssignment, createBaseLayer } from '@moebench/base-layers';
import type { BenchCase } from '../registry.js';

/** Sizes of the BASE layer case: the same tokens, model width and hidden width as the dense FFN case. */
const TOKENS = 2048;
const D_MODEL = 256;
const D_FF = 1024;
const EXPERTS = 8;

/**
 * The BASE layer in training, forward plus backward: balanced assignment by auction, gather
 * dispatch, per-expert layer norm and FFN, sigmoid gate, combine, then the gradients of every
 * variable for a fixed upstream gradient (the loss is sum(y * dy)). FLOPs are the active ones, the
 * affinities and one expert's two projections per token (`flopsPerToken`), counted three times for
 * the forward and the two backward products. Layer norms, GELU and the gate are not counted.
 */
export const baseLayerCase: BenchCase = {
  name: 'base-layer',
  description: `BASE layer forward + backward in training, ${TOKENS} tokens, d=${D_MODEL}, f=${D_FF}, ${EXPERTS} experts`,
  tokensPerStep: TOKENS,
  flopsPerStep: 3 * TOKENS * (2 * EXPERTS * D_MODEL + 4 * D_MODEL * D_FF),
  prepare() {
    const layer = createBaseLayer({ dModel: D_MODEL, numExperts: EXPERTS, hiddenSize: D_FF, seed: 'bench/base-layer' });
    const rng = new Rng('bench/base-layer/data');
    // Non-zero output projections, so the step is the one a trained layer takes.
    for (const bank of layer.banks) {
      tf.tidy(() => bank.w2.assign(rng.normalTensor(bank.w2.shape, 0, 0.02)));
    }
    const x = rng.normalTensor([TOKENS, D_MODEL]);
    const upstream = rng.normalTensor([TOKENS, D_MODEL]);
    return {
      run() {
        tf.tidy(() => {
          const { grads } = tf.variableGrads(
            () => tf.sum(tf.mul(layer.apply(x, { training: true }).output, upstream)),
            layer.trainableVariables,
          );
          for (const grad of Object.values(grads)) grad.dataSync();
        });
      },
      dispose() {
        tf.dispose([x, upstream]);
        layer.dispose();
      },
    };
  },
};

/**
 * Times the auction alone: balanced assignment of `tokens` tokens to 8 experts with the default
 * epsilon (1e-4 of the affinity spread) and epsilon scaling. It is plain JavaScript, so only the
 * wasm variant runs it. The affinities are x . w_e for normal features and the layer's centroid
 * init (orthogonal, gain 0.1). No FLOPs are counted, so GFLOP/s reads 0.
 */
function auctionCase(tokens: number): BenchCase {
  return {
    name: `base-auction-${tokens}`,
    description: `BASE balanced assignment (auction) alone, ${tokens} tokens, ${EXPERTS} experts, d=${D_MODEL} affinities`,
    tokensPerStep: tokens,
    flopsPerStep: 0,
    variants: ['wasm'],
    prepare() {
      const rng = new Rng(`bench/base-auction-${tokens}`);
      const affinities = tf.tidy(() => {
        const features = rng.normalTensor([tokens, D_MODEL]);
        const centroids = rng.orthogonal(EXPERTS, D_MODEL, 0.1);
        return tf.matMul(features, centroids, false, true).dataSync() as Float32Array;
      });
      return {
        run() {
          balancedAssignment(affinities, tokens, EXPERTS);
        },
        dispose() {},
      };
    },
  };
}

/** The auction at 2048 tokens (a training step's routing group) and at 8192. */
export const baseAuctionCases: BenchCase[] = [auctionCase(2048), auctionCase(8192)];

import { Rng, tf } from '@moebench/backend';
import { gelu } from '@moebench/moe';
import type { BenchCase } from '../registry.js';

/** Tokens, model width and hidden width of the dense FFN case. */
const TOKENS = 2048;
const D_MODEL = 256;
const D_FF = 1024;

/**
 * The dense two-layer FFN, forward plus backward: y = GELU(x W1) W2 for 2048 tokens, d=256,
 * f=1024, then the gradients of W1 and W2 for a fixed upstream gradient dy (the loss is
 * sum(y * dy)). GELU is @moebench/moe's `gelu` (the tanh form), the activation every model's
 * FFN and the MoE experts use, so this baseline and the MoE cases run the same element-wise work.
 * FLOPs count the forward's two products (2 x 2 x tokens x d x f) three times, for
 * the forward and the two backward products per layer; GELU and the loss are not counted.
 */
export const denseFfnCase: BenchCase = {
  name: 'dense-ffn',
  description: `dense FFN forward + backward, ${TOKENS} tokens, d=${D_MODEL}, f=${D_FF}, GELU`,
  tokensPerStep: TOKENS,
  flopsPerStep: 3 * 2 * 2 * TOKENS * D_MODEL * D_FF,
  // Stock wasm and cpu are here to show the replacement kernels' gain side by side.
  variants: ['wasm-native', 'wasm', 'wasm-stock', 'cpu', 'tensorflow'],
  prepare() {
    const rng = new Rng('bench/dense-ffn');
    const x = rng.normalTensor([TOKENS, D_MODEL]);
    const w1 = rng.normalTensor([D_MODEL, D_FF], 0, 0.02);
    const w2 = rng.normalTensor([D_FF, D_MODEL], 0, 0.02);
    const upstream = rng.normalTensor([TOKENS, D_MODEL]);
    const loss = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
      tf.sum(tf.mul(tf.matMul(gelu(tf.matMul(x, a)), b), upstream));
    return {
      run() {
        tf.tidy(() => {
          const grads = tf.grads(loss)([w1, w2]);
          for (const grad of grads) grad.dataSync();
        });
      },
      dispose() {
        tf.dispose([x, w1, w2, upstream]);
      },
    };
  },
};

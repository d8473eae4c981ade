import { Rng, tf } from '@moebench/backend';
import { ExpertBank, type MoeLayer, type RouterContext } from '@moebench/moe';
import { createGShardLayer } from '@moebench/gshard';
import { createHashLayer } from '@moebench/hash-layers';
import { createSwitchLayer } from '@moebench/switch';
import type { BenchCase } from '../registry.js';

/** Sizes of the MoE layer cases: the same tokens, model width and hidden width as the dense FFN case. */
const TOKENS = 2048;
const D_MODEL = 256;
const D_FF = 1024;
const EXPERTS = 8;
const VOCAB = 256;
/** Forward FLOPs per token of a linear router and of one expert. */
const ROUTER_FLOPS = 2 * D_MODEL * EXPERTS;
const EXPERT_FLOPS = 4 * D_MODEL * D_FF;

/**
 * A MoE layer in training, forward plus backward: routing, gather dispatch, the batched expert
 * matmuls, combine, then the gradients of every variable for a fixed upstream gradient (the loss is
 * sum(y * dy) + the auxiliary loss). FLOPs are the layer's active forward FLOPs per token
 * (router 2 d E plus k experts' two projections 4 d f, which `flopsPerToken()` of each layer returns)
 * three times, as in the dense FFN case. Layers are built in `prepare`, after the backend started.
 */
function moeLayerCase(name: string, description: string, flopsPerToken: number, build: () => MoeLayer): BenchCase {
  return {
    name,
    description: `${description} forward + backward in training, ${TOKENS} tokens, d=${D_MODEL}, f=${D_FF}, ${EXPERTS} experts`,
    tokensPerStep: TOKENS,
    flopsPerStep: 3 * TOKENS * flopsPerToken,
    prepare() {
      const layer = build();
      const rng = new Rng(`bench/${name}/data`);
      const x = rng.normalTensor([TOKENS, D_MODEL]);
      const upstream = rng.normalTensor([TOKENS, D_MODEL]);
      // Token ids for HASH: a fixed pseudo-random sequence over the vocabulary.
      const tokenIds = Int32Array.from({ length: TOKENS }, () => rng.int(VOCAB));
      let step = 0;
      return {
        run() {
          const context: RouterContext = { training: true, rng: new Rng(`bench/${name}/step-${step++}`), tokenIds };
          tf.tidy(() => {
            const { value, grads } = tf.variableGrads(() => {
              const { output, auxLoss } = layer.apply(x, context);
              return tf.add(tf.sum(tf.mul(output, upstream)), auxLoss) as tf.Scalar;
            }, layer.trainableVariables);
            value.dataSync();
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
}

/** Switch top-1, capacity factor 1.0, jitter and balance loss on. */
export const switchLayerCase = moeLayerCase('switch-layer', 'Switch top-1 layer (capacity factor 1.0)', ROUTER_FLOPS + EXPERT_FLOPS, () =>
  createSwitchLayer({ dModel: D_MODEL, hiddenSize: D_FF, numExperts: EXPERTS, seed: 'bench/switch-layer' }),
);

/** GShard top-2, Gumbel-sampled second expert, capacity factor 1.0. */
export const gshardLayerCase = moeLayerCase('gshard-layer', 'GShard top-2 layer (sampling policy, capacity factor 1.0)', ROUTER_FLOPS + 2 * EXPERT_FLOPS, () =>
  createGShardLayer({ dModel: D_MODEL, hiddenSize: D_FF, numExperts: EXPERTS, seed: 'bench/gshard-layer' }),
);

/** HASH with a random table, no dropping. */
export const hashLayerCase = moeLayerCase('hash-layer', `HASH layer (random table over ${VOCAB} ids, no dropping)`, EXPERT_FLOPS, () =>
  createHashLayer({ dModel: D_MODEL, hiddenSize: D_FF, numExperts: EXPERTS, vocabSize: VOCAB, seed: 1 }),
);

/**
 * The dense FFN at twice the hidden width, GShard's active width (two experts per token), built as a
 * one-expert bank so it runs the same batched matmul code as the experts.
 */
export const denseFfnTwiceWidthCase: BenchCase = {
  name: 'dense-ffn-f2048',
  description: `dense FFN forward + backward, ${TOKENS} tokens, d=${D_MODEL}, f=${2 * D_FF} (GShard's active width), GELU`,
  tokensPerStep: TOKENS,
  flopsPerStep: 3 * 2 * 2 * TOKENS * D_MODEL * 2 * D_FF,
  prepare() {
    const bank = new ExpertBank({ numExperts: 1, dModel: D_MODEL, hiddenSize: 2 * D_FF, rng: new Rng('bench/dense-ffn-f2048') });
    const rng = new Rng('bench/dense-ffn-f2048/data');
    const x = rng.normalTensor([1, TOKENS, D_MODEL]);
    const upstream = rng.normalTensor([1, TOKENS, D_MODEL]);
    return {
      run() {
        tf.tidy(() => {
          const { grads } = tf.variableGrads(
            () => tf.sum(tf.mul(bank.apply(x as tf.Tensor3D), upstream)) as tf.Scalar,
            bank.trainableVariables,
          );
          for (const grad of Object.values(grads)) grad.dataSync();
        });
      },
      dispose() {
        tf.dispose([x, upstream]);
        bank.dispose();
      },
    };
  },
};

/** Every MoE layer case of this file, in the order the table lists them. */
export const moeLayerCases: BenchCase[] = [switchLayerCase, gshardLayerCase, denseFfnTwiceWidthCase, hashLayerCase];

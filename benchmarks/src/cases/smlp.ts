import { Rng, tf } from '@moebench/backend';
import { createGmlpBlock, createSparseBlock } from '@moebench/smlp';
import type { BenchCase } from '../registry.js';

/** Sizes of the smlp cases: 2048 tokens (8 sequences of 256) at d = 256, as in the dense FFN case. */
const BATCH = 8;
const SEQ_LEN = 256;
const TOKENS = BATCH * SEQ_LEN;
const D_MODEL = 256;
/** Gated width h of the gMLP block and of sMoE (U maps d -> 2h): the package default 3d. */
const HIDDEN = 3 * D_MODEL;
const SMOE_EXPERTS = 4;
const TMOE_EXPERTS = 8;
/** Hidden width of each BASE expert, as the dense FFN case's f. */
const TMOE_HIDDEN = 4 * D_MODEL;

/**
 * Builds a case that runs a block forward and then the gradients of every variable for a fixed
 * upstream gradient (the loss is sum(y * dy)). FLOPs are the block's `flopsPerToken(SEQ_LEN)`
 * three times per token, for the forward and the two backward products. Token mixing is counted at
 * the full sequence length; element-wise work is not counted.
 */
function blockCase(
  name: string,
  description: string,
  build: () => { flopsPerToken(seqLen?: number): number; trainableVariables: tf.Variable[]; dispose(): void },
  forward: (block: never, x: tf.Tensor3D) => tf.Tensor,
): BenchCase {
  // The FLOP count comes from the block's own accounting, so a probe block is built to read it.
  // That happens on the first read, on the backend the runner started, not when the module loads
  // (which would start tfjs's default backend even for `pnpm bench --list`).
  let flopsPerToken: number | undefined;
  return {
    name,
    description,
    tokensPerStep: TOKENS,
    get flopsPerStep(): number {
      if (flopsPerToken === undefined) {
        const probe = build();
        try {
          flopsPerToken = probe.flopsPerToken(SEQ_LEN);
        } finally {
          probe.dispose();
        }
      }
      return 3 * TOKENS * flopsPerToken;
    },
    prepare() {
      const block = build();
      const rng = new Rng(`bench/${name}/data`);
      const x = rng.normalTensor([BATCH, SEQ_LEN, D_MODEL]) as tf.Tensor3D;
      const upstream = rng.normalTensor([BATCH, SEQ_LEN, D_MODEL]);
      return {
        run() {
          tf.tidy(() => {
            const { grads } = tf.variableGrads(
              () => tf.sum(tf.mul(forward(block as never, x), upstream)),
              block.trainableVariables,
            );
            for (const grad of Object.values(grads)) grad.dataSync();
          });
        },
        dispose() {
          tf.dispose([x, upstream]);
          block.dispose();
        },
      };
    },
  };
}

/** The gMLP block, forward + backward. */
export const gmlpBlockCase: BenchCase = blockCase(
  'gmlp-block',
  `gMLP block forward + backward, ${BATCH} x ${SEQ_LEN} tokens, d=${D_MODEL}, h=${HIDDEN}`,
  () => createGmlpBlock({ dModel: D_MODEL, maxSeqLen: SEQ_LEN, hiddenSize: HIDDEN, seed: 'bench/gmlp-block' }),
  (block: ReturnType<typeof createGmlpBlock>, x) => block.apply(x),
);

/**
 * The sMLP sparse block in training, forward + backward: sMoE with deterministic routing, then the
 * BASE layer (balanced assignment by auction). The BASE experts' output projections start at zero,
 * so they are set to small random values first, as in a trained layer.
 */
export const smlpSparseBlockCase: BenchCase = blockCase(
  'smlp-sparse-block',
  `sMLP sparse block forward + backward in training, ${BATCH} x ${SEQ_LEN} tokens, d=${D_MODEL}, ` +
    `sMoE ${SMOE_EXPERTS} experts h=${HIDDEN}, BASE ${TMOE_EXPERTS} experts f=${TMOE_HIDDEN}`,
  () => {
    const block = createSparseBlock({
      dModel: D_MODEL,
      maxSeqLen: SEQ_LEN,
      smoe: { numExperts: SMOE_EXPERTS, hiddenSize: HIDDEN },
      tmoe: { numExperts: TMOE_EXPERTS, hiddenSize: TMOE_HIDDEN },
      seed: 'bench/smlp-sparse-block',
    });
    const rng = new Rng('bench/smlp-sparse-block/experts');
    for (const bank of block.tmoe.banks) tf.tidy(() => bank.w2.assign(rng.normalTensor(bank.w2.shape, 0, 0.02)));
    return block;
  },
  (block: ReturnType<typeof createSparseBlock>, x) => block.apply(x, { training: true }).output,
);

import { tf } from '@moebench/backend';
import type { RoutingStats } from '@moebench/moe';
import { createGmlpBlock, createSparseBlock, type GmlpBlock, type SparseBlock, type SparseBlockOptions } from '@moebench/smlp';
import { sparseBlockIndices, type ResolvedModelConfig } from './config.js';
import { gmlpBlockOptions } from './gmlp.js';
import { smlpSparseWidths } from './smlp-widths.js';
import { EmbeddingLanguageModel, type BlocksOutput, type StepContext } from './language-model.js';

/** Builds the options of the sparse block at `index`; `config.smlp.smoe` and `config.smlp.tmoe` pass through. */
export function sparseBlockOptions(config: ResolvedModelConfig, seed: number | string, index: number): SparseBlockOptions {
  const widths = smlpSparseWidths(config);
  return {
    dModel: config.dModel,
    maxSeqLen: config.seqLen,
    layerNormEpsilon: config.layerNormEpsilon,
    seed: `${seed}/block${index}`,
    smoe: {
      ...(config.smlp.smoe as object),
      numExperts: widths.smoeExperts,
      hiddenSize: widths.smoeHidden,
      initStd: config.initStd,
      layerNormEpsilon: config.layerNormEpsilon,
    },
    tmoe: {
      ...(config.smlp.tmoe as object),
      numExperts: widths.tmoeExperts,
      hiddenSize: widths.tmoeHidden,
      layerNormEpsilon: config.layerNormEpsilon,
    },
  };
}

/**
 * sMLP as a causal LM: token embedding (no position embedding), gMLP blocks with every
 * moeEvery-th block (counting from 1) an sMLP sparse block from @moebench/smlp
 * (x <- x + sMoE(LN(x)); x <- tMoE(x)), a final layer norm and the tied LM head. The dense blocks
 * take `config.gmlp`; the sparse blocks `config.smlp.smoe` and `config.smlp.tmoe`. With sMoE partial
 * prediction the model returns the product of its sparse blocks' loss masks.
 */
export class SmlpLanguageModel extends EmbeddingLanguageModel {
  private readonly blocks: Array<{ kind: 'dense'; block: GmlpBlock } | { kind: 'sparse'; block: SparseBlock }> = [];

  constructor(config: ResolvedModelConfig, seed: number | string) {
    super('smlp', config, seed);
    const sparse = new Set(sparseBlockIndices(config));
    try {
      for (let i = 0; i < config.layers; i++) {
        if (sparse.has(i)) {
          const block = createSparseBlock(sparseBlockOptions(config, seed, i));
          this.store.adopt(`block${i}.sparse`, block.trainableVariables);
          this.blocks.push({ kind: 'sparse', block });
        } else {
          const block = createGmlpBlock(gmlpBlockOptions(config, seed, i, config.gmlp));
          this.store.adopt(`block${i}`, block.trainableVariables);
          this.blocks.push({ kind: 'dense', block });
        }
      }
    } catch (error) {
      // The smlp package rejected an option: release the embedding and the blocks built so far.
      this.dispose();
      throw error;
    }
    this.buildHead();
  }

  protected runBlocks(embedded: tf.Tensor2D, context: StepContext): BlocksOutput {
    const { batch, time, training, rng } = context;
    const { dModel } = this.config;
    let x = tf.reshape(embedded, [batch, time, dModel]) as tf.Tensor3D;

    const auxLosses: tf.Scalar[] = [];
    const routing: Array<{ layer: string; stats: RoutingStats }> = [];
    let lossMask: tf.Tensor2D | undefined;
    this.blocks.forEach((entry, i) => {
      if (entry.kind === 'dense') {
        x = entry.block.apply(x);
        return;
      }
      const name = `block${i}`;
      const result = entry.block.apply(x, { training, tokenIds: context.tokenIds, previousTokenIds: context.previousTokenIds, rng: rng.fork(name) });
      x = result.output;
      auxLosses.push(result.auxLoss);
      routing.push({ layer: `${name}.smoe`, stats: result.smoeStats }, { layer: `${name}.tmoe`, stats: result.tmoeStats });
      if (result.lossMask !== undefined) lossMask = lossMask === undefined ? result.lossMask : (tf.mul(lossMask, result.lossMask) as tf.Tensor2D);
    });

    const output: BlocksOutput = { hidden: tf.reshape(x, [batch * time, dModel]) as tf.Tensor2D, auxLosses, routing };
    if (lossMask !== undefined) output.lossMask = lossMask;
    return output;
  }

  protected disposeLayers(): void {
    for (const entry of this.blocks) entry.block.dispose();
  }
}

import { tf } from '@moebench/backend';
import { createGmlpBlock, type GmlpBlock, type GmlpBlockOptions } from '@moebench/smlp';
import type { ResolvedModelConfig } from './config.js';
import { EmbeddingLanguageModel, type BlocksOutput, type StepContext } from './language-model.js';

/** Builds the options of the gMLP block at `index` from the model config (config.gmlp passes through). */
export function gmlpBlockOptions(config: ResolvedModelConfig, seed: number | string, index: number, extra: object): GmlpBlockOptions {
  return {
    ...extra,
    dModel: config.dModel,
    maxSeqLen: config.seqLen,
    hiddenSize: config.ffnHidden,
    initStd: config.initStd,
    layerNormEpsilon: config.layerNormEpsilon,
    seed: `${seed}/block${index}`,
  };
}

/**
 * gMLP as a causal LM: token embedding (no position embedding, since the spatial weights are
 * position-aware), `layers` gMLP blocks from @moebench/smlp with hidden width ffnHidden, a final
 * layer norm and the tied LM head. `config.gmlp` passes through to every block (for example
 * `spatialInitEpsilon`).
 */
export class GmlpLanguageModel extends EmbeddingLanguageModel {
  private readonly blocks: GmlpBlock[] = [];

  constructor(config: ResolvedModelConfig, seed: number | string) {
    super('gmlp', config, seed);
    try {
      for (let i = 0; i < config.layers; i++) {
        const block = createGmlpBlock(gmlpBlockOptions(config, seed, i, config.gmlp));
        this.store.adopt(`block${i}`, block.trainableVariables);
        this.blocks.push(block);
      }
    } catch (error) {
      // The smlp package rejected a gmlp option: release the embedding and the blocks built so far.
      this.dispose();
      throw error;
    }
    this.buildHead();
  }

  protected runBlocks(embedded: tf.Tensor2D, context: StepContext): BlocksOutput {
    const { batch, time } = context;
    let x = tf.reshape(embedded, [batch, time, this.config.dModel]) as tf.Tensor3D;
    for (const block of this.blocks) x = block.apply(x);
    return { hidden: tf.reshape(x, [batch * time, this.config.dModel]) as tf.Tensor2D, auxLosses: [], routing: [] };
  }

  protected disposeLayers(): void {
    for (const block of this.blocks) block.dispose();
  }
}

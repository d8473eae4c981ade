import { tf } from '@moebench/backend';
import type { RoutingStats } from '@moebench/moe';
import { sparseBlockIndices, type ResolvedModelConfig } from './config.js';
import { CausalSelfAttention, FeedForward, LayerNorm } from './dense.js';
import { EmbeddingLanguageModel, type BlocksOutput, type StepContext } from './language-model.js';
import { checkSparseOptions, createSparseFeedForward, type SparseFeedForward, type SparseKind } from './sparse-feed-forward.js';
import type { CheckpointTables } from './checkpoint.js';

interface TransformerBlock {
  attentionNorm: LayerNorm;
  attention: CausalSelfAttention;
  /** Dense FFN sublayer with its pre-norm, or the MoE sublayer that replaces both. */
  feedForward: { kind: 'dense'; norm: LayerNorm; ffn: FeedForward } | { kind: 'sparse'; layer: SparseFeedForward };
}

/**
 * A decoder-only pre-LN Transformer: token and learned position embeddings, then blocks of
 * x <- x + Attention(LN(x)); x <- x + FFN(LN(x)), a final layer norm and the tied LM head. With a
 * sparse kind (`gshard`, `switch`, `base`, `hash`), the FFN sublayer of every moeEvery-th block is
 * the MoE layer of that kind.
 *
 * Initialisation follows GPT-2: weights and embeddings normal with std initStd, the projections that
 * write into the residual stream scaled by 1 / sqrt(2 x layers).
 */
export class TransformerLanguageModel extends EmbeddingLanguageModel {
  private readonly positions: tf.Variable;
  private readonly blocks: TransformerBlock[] = [];
  private readonly attentions: CausalSelfAttention[] = [];
  private readonly sparseLayers: SparseFeedForward[] = [];

  constructor(kind: 'transformer' | SparseKind, config: ResolvedModelConfig, seed: number | string) {
    if (kind !== 'transformer') checkSparseOptions(kind, config);
    super(kind, config, seed);
    this.positions = this.store.normal('positions', [config.seqLen, config.dModel], config.initStd);
    try {
      this.buildBlocks(kind, seed);
    } catch (error) {
      // A layer package rejected its options part-way: release what was built.
      this.dispose();
      throw error;
    }
  }

  private buildBlocks(kind: 'transformer' | SparseKind, seed: number | string): void {
    const config = this.config;
    const sparse = new Set(kind === 'transformer' ? [] : sparseBlockIndices(config));
    const { dModel, heads, seqLen, ffnHidden, initStd, layerNormEpsilon, layers } = config;
    const residualStd = initStd / Math.sqrt(2 * layers);
    for (let i = 0; i < layers; i++) {
      const name = `block${i}`;
      const attentionNorm = new LayerNorm(this.store, `${name}.attentionNorm`, dModel, layerNormEpsilon);
      const attention = new CausalSelfAttention(this.store, `${name}.attention`, dModel, heads, seqLen, initStd, residualStd);
      this.attentions.push(attention);
      let feedForward: TransformerBlock['feedForward'];
      if (sparse.has(i)) {
        const layer = createSparseFeedForward(kind as SparseKind, config, this.store, `${name}.moe`, seed);
        this.sparseLayers.push(layer);
        feedForward = { kind: 'sparse', layer };
      } else {
        const norm = new LayerNorm(this.store, `${name}.ffnNorm`, dModel, layerNormEpsilon);
        const ffn = new FeedForward(this.store, `${name}.ffn`, dModel, ffnHidden, initStd, residualStd);
        feedForward = { kind: 'dense', norm, ffn };
      }
      this.blocks.push({ attentionNorm, attention, feedForward });
    }
    this.buildHead();
  }

  protected runBlocks(embedded: tf.Tensor2D, context: StepContext): BlocksOutput {
    const { batch, time } = context;
    const { dModel } = this.config;
    const positions = tf.slice(this.positions, [0, 0], [time, dModel]);
    let x = tf.reshape(tf.add(tf.reshape(embedded, [batch, time, dModel]), positions), [batch * time, dModel]) as tf.Tensor2D;

    const auxLosses: tf.Scalar[] = [];
    const routing: Array<{ layer: string; stats: RoutingStats }> = [];
    this.blocks.forEach((block, i) => {
      x = tf.add(x, block.attention.apply(block.attentionNorm.apply(x) as tf.Tensor2D, batch, time));
      const feedForward = block.feedForward;
      if (feedForward.kind === 'dense') {
        x = tf.add(x, feedForward.ffn.apply(feedForward.norm.apply(x) as tf.Tensor2D));
      } else {
        const result = feedForward.layer.apply(x, context);
        x = result.output;
        auxLosses.push(result.auxLoss);
        routing.push({ layer: `block${i}.moe`, stats: result.stats });
      }
    });
    return { hidden: x, auxLosses, routing };
  }

  protected override tables(): CheckpointTables {
    return Object.assign({}, ...this.sparseLayers.map((layer) => layer.tables?.() ?? {}));
  }

  protected override restoreTables(tables: CheckpointTables): void {
    for (const layer of this.sparseLayers) layer.restoreTables?.(tables);
  }

  protected disposeLayers(): void {
    for (const attention of this.attentions) attention.dispose();
    for (const layer of this.sparseLayers) layer.dispose();
  }
}

import { Rng, tf } from '@moebench/backend';
import type { RoutingStats } from '@moebench/moe';
import { accountModel } from './accounting.js';
import { readCheckpoint, writeCheckpoint, type CheckpointTables } from './checkpoint.js';
import type { ResolvedModelConfig } from './config.js';
import { LayerNorm } from './dense.js';
import { ParameterStore } from './parameters.js';
import type { Architecture, ForwardOptions, ForwardOutput, LanguageModel, ModelAccounting } from './types.js';

/** What the blocks of one forward pass see besides the hidden states. */
export interface StepContext {
  training: boolean;
  /** Sequences in the batch. */
  batch: number;
  /** Length of each sequence (at most seqLen). */
  time: number;
  /** Token ids, flattened batch x time, in the order of the hidden-state rows. */
  tokenIds: Int32Array;
  /** The previous token of each row, -1 at the start of a sequence. */
  previousTokenIds: Int32Array;
  /** This step's random stream; blocks fork it by their name. */
  rng: Rng;
}

/** What the blocks of one forward pass return. */
export interface BlocksOutput {
  /** Final hidden states [batch * time, d], before the final layer norm. */
  hidden: tf.Tensor2D;
  /** Weighted auxiliary losses of the MoE layers, one scalar per layer. */
  auxLosses: tf.Scalar[];
  routing: Array<{ layer: string; stats: RoutingStats }>;
  lossMask?: tf.Tensor2D;
}

/**
 * What every model of the zoo shares: a token embedding [V, d], a final layer norm, an LM head tied
 * to the embedding (logits = LN(h) E^T), accounting from the config, and checkpoints. A subclass
 * builds its blocks in its constructor and runs them in `runBlocks`.
 */
export abstract class EmbeddingLanguageModel implements LanguageModel {
  readonly config: Readonly<ResolvedModelConfig>;
  protected readonly store: ParameterStore;
  protected readonly embedding: tf.Variable;
  private finalNorm!: LayerNorm;
  private stepCounter = 0;

  protected constructor(
    readonly architecture: Architecture,
    config: ResolvedModelConfig,
    protected readonly seed: number | string,
  ) {
    this.config = Object.freeze({ ...config });
    this.store = new ParameterStore(new Rng(seed).fork(architecture));
    this.embedding = this.store.normal('embedding', [config.vocabSize, config.dModel], config.initStd);
  }

  /** Creates the final layer norm. Subclasses call it after building their blocks, so the variable order follows the model. */
  protected buildHead(): void {
    this.finalNorm = new LayerNorm(this.store, 'finalNorm', this.config.dModel, this.config.layerNormEpsilon);
  }

  get trainableVariables(): tf.Variable[] {
    return this.store.variables;
  }

  /** Every variable with the name it is saved under, in the order of `trainableVariables`. */
  get namedVariables(): ReadonlyArray<{ name: string; variable: tf.Variable }> {
    return this.store.entries;
  }

  /**
   * Runs the model on token ids [batch, time] int32, time <= seqLen. Without `stepSeed`, the step's
   * random stream is seeded from the model seed and a count of the forward calls so far.
   *
   * @throws Error for tokens that are not a non-empty int32 [batch, time] tensor with time <= seqLen,
   *   or for a token id outside the vocabulary.
   */
  forward(tokens: tf.Tensor2D, options: ForwardOptions): ForwardOutput {
    const tokenIds = this.checkTokens(tokens);
    const [batch, time] = tokens.shape;
    const previousTokenIds = new Int32Array(tokenIds.length);
    for (let row = 0; row < tokenIds.length; row++) previousTokenIds[row] = row % time === 0 ? -1 : tokenIds[row - 1];

    const stepSeed = options.stepSeed ?? `${this.seed}/step${this.stepCounter++}`;
    const context: StepContext = { training: options.training, batch, time, tokenIds, previousTokenIds, rng: new Rng(stepSeed) };

    return tf.tidy(() => {
      const embedded = tf.gather(this.embedding, tf.reshape(tokens, [-1])) as tf.Tensor2D; // [batch * time, d]
      const { hidden, auxLosses, routing, lossMask } = this.runBlocks(embedded, context);

      const normalised = this.finalNorm.apply(hidden) as tf.Tensor2D;
      const logits = tf.reshape(tf.matMul(normalised, this.embedding as tf.Tensor2D, false, true), [batch, time, this.config.vocabSize]);
      const auxLoss = auxLosses.length === 0 ? tf.scalar(0) : (tf.addN(auxLosses) as tf.Scalar);
      const output: ForwardOutput = { logits: logits as tf.Tensor3D, auxLoss, routing };
      if (lossMask !== undefined) output.lossMask = lossMask;
      return output as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** Runs the blocks on the embedded tokens [batch * time, d]. */
  protected abstract runBlocks(embedded: tf.Tensor2D, context: StepContext): BlocksOutput;

  accounting(): ModelAccounting {
    return accountModel(this.architecture, this.config);
  }

  /** Fixed tables saved with the weights (the HASH table); none by default. */
  protected tables(): CheckpointTables {
    return {};
  }

  /** Installs tables read from a checkpoint; subclasses with tables override it. */
  protected restoreTables(tables: CheckpointTables): void {
    void tables;
  }

  async save(path: string): Promise<void> {
    await writeCheckpoint(path, { architecture: this.architecture, config: this.config, variables: this.store.entries, tables: this.tables() });
  }

  async load(path: string): Promise<void> {
    const tables = await readCheckpoint(path, { architecture: this.architecture, config: this.config, variables: this.store.entries });
    this.restoreTables(tables);
  }

  dispose(): void {
    this.store.disposeOwned();
    this.disposeLayers();
  }

  /** Releases what the subclass owns besides the store's variables (layer packages' variables, constants). */
  protected abstract disposeLayers(): void;

  private checkTokens(tokens: tf.Tensor2D): Int32Array {
    if (tokens.rank !== 2) {
      throw new Error(`${this.architecture}.forward: tokens must be [batch, seqLen], received shape [${tokens.shape.join(', ')}].`);
    }
    if (tokens.dtype !== 'int32') {
      throw new Error(`${this.architecture}.forward: tokens must be int32, received ${tokens.dtype}.`);
    }
    const [batch, time] = tokens.shape;
    if (batch < 1 || time < 1 || time > this.config.seqLen) {
      throw new Error(
        `${this.architecture}.forward: tokens must have at least one row and 1..${this.config.seqLen} positions ` +
          `(the config's seqLen), received shape [${batch}, ${time}].`,
      );
    }
    const ids = tokens.dataSync() as Int32Array;
    for (const id of ids) {
      if (id < 0 || id >= this.config.vocabSize) {
        throw new Error(`${this.architecture}.forward: token id ${id} is outside the vocabulary 0..${this.config.vocabSize - 1}.`);
      }
    }
    return Int32Array.from(ids);
  }
}

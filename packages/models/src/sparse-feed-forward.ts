import type { tf } from '@moebench/backend';
import type { RoutingStats } from '@moebench/moe';
import type { CheckpointTables } from './checkpoint.js';
import type { ResolvedModelConfig } from './config.js';
import type { StepContext } from './language-model.js';
import type { ParameterStore } from './parameters.js';

/** The MoE kinds that replace a Transformer block's FFN sublayer. */
export type SparseKind = 'gshard' | 'switch' | 'base' | 'hash';

/**
 * A MoE sublayer as the Transformer block runs it: the residual stream in, the new residual stream
 * out. For GShard, Switch and HASH that is x + MoE(LN(x)); the BASE layer carries its own residual
 * and gate and reads x itself.
 */
export interface SparseFeedForward {
  /** Applies the sublayer to the residual stream `x` [batch * time, d]. */
  apply(x: tf.Tensor2D, context: StepContext): { output: tf.Tensor2D; auxLoss: tf.Scalar; stats: RoutingStats };
  /** Fixed tables to save with the weights (the HASH table). */
  tables?(): CheckpointTables;
  /** Installs tables read from a checkpoint. */
  restoreTables?(tables: CheckpointTables): void;
  /** Releases what the layer package owns. */
  dispose(): void;
}

/**
 * Builds the MoE sublayer of `kind` for one block, registering its variables in `store` under `name`.
 */
export function createSparseFeedForward(
  kind: SparseKind,
  config: ResolvedModelConfig,
  store: ParameterStore,
  name: string,
): SparseFeedForward {
  void config;
  void store;
  throw new Error(`The ${kind} MoE layer package has not been wired in yet (block ${name}).`);
}

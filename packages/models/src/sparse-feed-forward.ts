import { tf } from '@moebench/backend';
import type { MoeLayer, RouterContext, RoutingStats } from '@moebench/moe';
import { createSwitchLayer } from '@moebench/switch';
import type { CheckpointTables } from './checkpoint.js';
import type { ResolvedModelConfig } from './config.js';
import { LayerNorm } from './dense.js';
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
 * Builds the MoE sublayer of `kind` for one block, registering its variables in `store` under
 * `name`. The layer package draws its initial values from the seed `${seed}/${name}`.
 */
export function createSparseFeedForward(
  kind: SparseKind,
  config: ResolvedModelConfig,
  store: ParameterStore,
  name: string,
  seed: number | string,
): SparseFeedForward {
  const layerSeed = `${seed}/${name}`;
  switch (kind) {
    case 'switch': {
      const layer = createSwitchLayer({ ...config.switch, dModel: config.dModel, numExperts: config.experts, hiddenSize: config.ffnHidden, seed: layerSeed });
      return preNormResidual(layer, config, store, name);
    }
    default:
      throw new Error(`The ${kind} MoE layer package has not been wired in yet (block ${name}).`);
  }
}

/** Wraps a MoE FFN as x + MoE(LN(x)), the LN owned by the model. */
function preNormResidual(layer: MoeLayer, config: ResolvedModelConfig, store: ParameterStore, name: string): SparseFeedForward {
  const norm = new LayerNorm(store, `${name}.norm`, config.dModel, config.layerNormEpsilon);
  store.adopt(name, layer.trainableVariables);
  return {
    apply(x, context) {
      const result = layer.apply(norm.apply(x), routerContext(context, name));
      return { output: tf.add(x, result.output) as tf.Tensor2D, auxLoss: result.auxLoss, stats: result.stats };
    },
    dispose: () => layer.dispose(),
  };
}

/** The router context of one layer: token ids for HASH, and the step's random stream forked by layer name. */
function routerContext(context: StepContext, name: string): RouterContext {
  return { training: context.training, tokenIds: context.tokenIds, previousTokenIds: context.previousTokenIds, rng: context.rng.fork(name) };
}

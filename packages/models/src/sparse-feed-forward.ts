import { Rng, tf } from '@moebench/backend';
import { createBaseLayer, resolveBaseLayerOptions, type BaseLayerOptions } from '@moebench/base-layers';
import { expertRowsPerToken, requireNumber, type MoeLayer, type RouterContext, type RoutingStats } from '@moebench/moe';
import { createGShardLayer, resolveGShardOptions, type GShardOptions } from '@moebench/gshard';
import {
  createHashLayer,
  deserializeHashTable,
  resolveHashOptions,
  serializeHashTable,
  type HashLayer,
  type HashOptions,
} from '@moebench/hash-layers';
import { createSwitchLayer, resolveSwitchOptions, type SwitchOptions } from '@moebench/switch';
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
 * and gate and reads x itself. The routing group is the whole batch, S = batch x time tokens,
 * flattened time-major.
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

/** The options each layer package receives: the config's options object plus what the model sets. */
function switchOptions(config: ResolvedModelConfig, seed: string): SwitchOptions {
  return { ...config.switch, dModel: config.dModel, numExperts: config.experts, hiddenSize: config.ffnHidden, seed };
}

/**
 * GShard's options, with evalCapacityTokenFraction defaulting to 1 (C = S, nothing dropped in
 * evaluation) instead of the package's 0.25. Top-2 capacity gives every first choice a slot before
 * any second choice, so with dropping a later token's first choice can evict an earlier token's
 * second choice, and evaluation would read the future. Set `gshard.evalCapacityTokenFraction` to
 * get fairseq's 0.25 back.
 */
function gshardOptions(config: ResolvedModelConfig, seed: string): GShardOptions {
  return { evalCapacityTokenFraction: 1, ...config.gshard, dModel: config.dModel, numExperts: config.experts, hiddenSize: config.ffnHidden, seed };
}

function hashOptions(config: ResolvedModelConfig, seed: string): HashOptions {
  const { unigramCounts, ...options } = config.hash;
  return {
    ...options,
    ...(unigramCounts === undefined ? {} : { unigramCounts }),
    dModel: config.dModel,
    vocabSize: config.vocabSize,
    numExperts: config.experts,
    hiddenSize: config.ffnHidden,
    // The hash package takes integer seeds only; one is derived from the model seed and block.
    seed: new Rng(seed).nextUint32(),
  };
}

function baseOptions(config: ResolvedModelConfig, seed: string): BaseLayerOptions {
  return {
    ...config.base,
    dModel: config.dModel,
    numExperts: config.experts,
    hiddenSize: config.ffnHidden,
    layerNormEpsilon: config.layerNormEpsilon,
    seed,
  };
}

/**
 * Validates the options the `kind` layer package will receive, with that package's own checks,
 * before any variable is created.
 *
 * @throws the layer package's error, naming the option, the value received and what is allowed.
 */
export function checkSparseOptions(kind: SparseKind, config: ResolvedModelConfig): void {
  if (kind === 'switch') resolveSwitchOptions(switchOptions(config, 'check'));
  else if (kind === 'gshard') resolveGShardOptions(gshardOptions(config, 'check'));
  else if (kind === 'hash') resolveHashOptions(hashOptions(config, 'check'));
  else resolveBaseLayerOptions(baseOptions(config, 'check'));
}

/**
 * Returns the expert rows per token a Switch, GShard or HASH sublayer computes in training, from its
 * training capacity factor: k x factor while the capacity limits (the padding slots of the [E, C, d]
 * buffer count), k when it drops nothing (see `expertRowsPerToken` of @moebench/moe).
 *
 * @throws the layer package's error for an invalid Switch or GShard option, or a RangeError for a
 *   HASH capacity factor that is not a finite number.
 */
export function trainingExpertRowsPerToken(kind: 'switch' | 'gshard' | 'hash', config: ResolvedModelConfig): number {
  if (kind === 'switch') return expertRowsPerToken(1, config.experts, resolveSwitchOptions(switchOptions(config, 'check')).capacityFactor);
  if (kind === 'gshard') return expertRowsPerToken(2, config.experts, resolveGShardOptions(gshardOptions(config, 'check')).capacityFactor);
  // Resolving HASH options needs the unigram counts of a balanced table, so the factor is read
  // directly; 0 (drop nothing) is the default of @moebench/hash-layers.
  return expertRowsPerToken(1, config.experts, requireNumber('HASH', 'capacityFactor', config.hash.capacityFactor ?? 0));
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
    case 'switch':
      return preNormResidual(createSwitchLayer(switchOptions(config, layerSeed)), config, store, name);
    case 'gshard':
      return preNormResidual(createGShardLayer(gshardOptions(config, layerSeed)), config, store, name);
    case 'hash': {
      const layer = createHashLayer(hashOptions(config, layerSeed));
      return withHashTable(preNormResidual(layer, config, store, name), layer, `${name}.hashTable`);
    }
    case 'base': {
      const layer = createBaseLayer(baseOptions(config, layerSeed));
      store.adopt(name, layer.trainableVariables);
      // The BASE layer reads the residual stream itself (no pre-norm) and returns the new one.
      return {
        apply(x, context) {
          const result = layer.apply(toTimeMajor(x, context), routerContext(context, name));
          return { output: fromTimeMajor(result.output, context), auxLoss: result.auxLoss, stats: result.stats };
        },
        dispose: () => layer.dispose(),
      };
    }
  }
}

/** Adds saving and restoring of a HASH layer's table, under `key`, to its sublayer. */
function withHashTable(sublayer: SparseFeedForward, layer: HashLayer, key: string): SparseFeedForward {
  return {
    ...sublayer,
    tables: () => ({ [key]: serializeHashTable(layer.table) }),
    restoreTables(tables) {
      if (!(key in tables)) throw new Error(`The checkpoint has no HASH table "${key}".`);
      const restored = deserializeHashTable(tables[key]);
      if (restored.numExperts !== layer.table.numExperts || restored.vocabSize !== layer.table.vocabSize) {
        throw new Error(
          `The checkpoint's HASH table "${key}" maps ${restored.vocabSize} tokens to ${restored.numExperts} experts; ` +
            `this model has ${layer.table.vocabSize} tokens and ${layer.table.numExperts} experts.`,
        );
      }
      // The router reads the table object on every call, so replacing its fields installs the saved table.
      const table = layer.table;
      table.kind = restored.kind;
      table.experts = restored.experts;
      table.seed = restored.seed;
    },
  };
}

/** Wraps a MoE FFN as x + MoE(LN(x)), the LN owned by the model. */
function preNormResidual(layer: MoeLayer, config: ResolvedModelConfig, store: ParameterStore, name: string): SparseFeedForward {
  const norm = new LayerNorm(store, `${name}.norm`, config.dModel, config.layerNormEpsilon);
  store.adopt(name, layer.trainableVariables);
  return {
    apply(x, context) {
      const result = layer.apply(toTimeMajor(norm.apply(x), context), routerContext(context, name));
      return { output: tf.add(x, fromTimeMajor(result.output, context)) as tf.Tensor2D, auxLoss: result.auxLoss, stats: result.stats };
    },
    dispose: () => layer.dispose(),
  };
}

/**
 * Reorders rows [batch * time, d] from batch-major to time-major (position 0 of every sequence,
 * then position 1, ...), the order of fairseq's T x B x C layout. Routers give capacity slots in
 * row order, so in this order a token competes for slots only with tokens at the same or earlier
 * positions, and dropping stays causal.
 */
function toTimeMajor(x: tf.Tensor, context: StepContext): tf.Tensor2D {
  const { batch, time } = context;
  const width = x.shape[x.rank - 1];
  return tf.reshape(tf.transpose(tf.reshape(x, [batch, time, width]), [1, 0, 2]), [time * batch, width]);
}

/** Reorders time-major rows back to batch-major. */
function fromTimeMajor(x: tf.Tensor, context: StepContext): tf.Tensor2D {
  const { batch, time } = context;
  const width = x.shape[x.rank - 1];
  return tf.reshape(tf.transpose(tf.reshape(x, [time, batch, width]), [1, 0, 2]), [batch * time, width]);
}

/** Reorders per-row values from batch-major to time-major, as `toTimeMajor` does. */
function timeMajorIds(ids: Int32Array, context: StepContext): Int32Array {
  const { batch, time } = context;
  const out = new Int32Array(ids.length);
  for (let b = 0; b < batch; b++) for (let t = 0; t < time; t++) out[t * batch + b] = ids[b * time + t];
  return out;
}

/** Builds the router context of one layer: token ids in routing order (HASH), and the step's random stream forked by layer name. */
function routerContext(context: StepContext, name: string): RouterContext {
  return {
    training: context.training,
    tokenIds: timeMajorIds(context.tokenIds, context),
    previousTokenIds: timeMajorIds(context.previousTokenIds, context),
    rng: context.rng.fork(name),
  };
}

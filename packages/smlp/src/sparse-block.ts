/**
 * The sMLP sparse block: x <- x + sMoE(LN(x)); x <- tMoE(x), with tMoE the BASE layer, which adds
 * its own sigmoid-gated residual.
 */
import { type RouterContext, type RoutingStats } from '@moebench/moe';
import { createBaseLayer, resolveBaseLayerOptions, type BaseLayer, type BaseLayerOptions } from '@moebench/base-layers';
import { tf } from '@moebench/backend';
import { layerNorm, makeVariable } from './ops.js';
import { createSmoe, resolveSmoeOptions, SMOE_OWNER, type Smoe, type SmoeOptions } from './smoe.js';
import { checkInteger, checkName, checkOptions, checkPositive, checkSeed, checkSequenceInput } from './validate.js';

/** sMoE options of a sparse block; the block sets dModel, maxSeqLen, seed and name. */
export type SparseBlockSmoeOptions = Omit<SmoeOptions, 'dModel' | 'maxSeqLen' | 'seed' | 'name'>;

/** tMoE (BASE layer) options of a sparse block; the block sets dModel, seed and name. */
export type SparseBlockTmoeOptions = Omit<BaseLayerOptions, 'dModel' | 'seed' | 'name'>;

/** Options of `createSparseBlock`. */
export interface SparseBlockOptions {
  /** Model width d. Required. */
  dModel: number;
  /** Maximum sequence length T, the size of the sMoE spatial weights. Required. */
  maxSeqLen: number;
  /** Options of the sMoE token mixing (experts, hidden width, routing, ...). Default: {} (sMoE's defaults). */
  smoe?: SparseBlockSmoeOptions;
  /** Options of the tMoE BASE layer (experts, hidden width, auction, ...). Default: {} (the BASE layer's defaults). */
  tmoe?: SparseBlockTmoeOptions;
  /** Epsilon of the layer norm before sMoE. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Seed of the initial weights; sMoE and tMoE get seeds derived from it. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names (`<name>/norm_gamma`, `<name>/smoe/...`, `<name>/tmoe/...`). Default: tfjs's automatic unique names. */
  name?: string;
}

/** Output of one sparse-block call. */
export interface SparseBlockOutput {
  /** The new residual stream [batch, seqLen, d]. */
  output: tf.Tensor3D;
  /** Sum of the weighted auxiliary losses of sMoE and tMoE (both define none, so 0 today). */
  auxLoss: tf.Scalar;
  /** The individual weighted losses, by `smoe/<name>` and `tmoe/<name>`. */
  losses: Record<string, tf.Scalar>;
  /** Routing statistics of the sMoE chunks. */
  smoeStats: RoutingStats;
  /** Routing statistics of the tMoE tokens. */
  tmoeStats: RoutingStats;
  /** With partial prediction: the sMoE loss mask [batch, seqLen] (1 where the loss counts); see `SmoeOutput.lossMask`. */
  lossMask?: tf.Tensor2D;
}

/** An sMLP sparse block with its variables. */
export interface SparseBlock {
  /** The sMoE module. */
  readonly smoe: Smoe;
  /** The tMoE BASE layer. */
  readonly tmoe: BaseLayer;
  /**
   * Runs the block on x [batch, seqLen, d]. `context.training` selects the BASE layer's balanced
   * assignment (training) or greedy routing (evaluation). Call inside tf.tidy or a gradient scope.
   */
  apply(x: tf.Tensor3D, context: RouterContext): SparseBlockOutput;
  /** Layer-norm gamma and beta [d], then sMoE's variables, then tMoE's. */
  readonly trainableVariables: tf.Variable[];
  /** Stored parameters, and those one token uses (all of sMoE, one tMoE expert plus the centroids). */
  parameterCount(): { total: number; activePerToken: number };
  /** Forward FLOPs per token: sMoE's at `seqLen` (default maxSeqLen) plus tMoE's. */
  flopsPerToken(seqLen?: number): number;
  /** Releases the variables. */
  dispose(): void;
}

const OWNER = 'createSparseBlock';

/** Every option of a sparse block, for the unknown-option check. */
const SPARSE_BLOCK_OPTION_KEYS: Record<keyof SparseBlockOptions, true> = {
  dModel: true,
  maxSeqLen: true,
  smoe: true,
  tmoe: true,
  layerNormEpsilon: true,
  seed: true,
  name: true,
};

/** The checked options of a sparse block, with the options of its two modules. */
interface ResolvedSparseBlock {
  dModel: number;
  maxSeqLen: number;
  layerNormEpsilon: number;
  name: string | undefined;
  smoeOptions: SmoeOptions;
  tmoeOptions: BaseLayerOptions;
}

/** Checks the block's own options and builds its modules' options (not yet checked by the modules). */
function resolveSparseBlock(options: SparseBlockOptions): ResolvedSparseBlock {
  checkOptions(OWNER, options, SPARSE_BLOCK_OPTION_KEYS);
  const dModel = checkInteger(OWNER, 'dModel', options.dModel);
  const maxSeqLen = checkInteger(OWNER, 'maxSeqLen', options.maxSeqLen);
  const layerNormEpsilon = checkPositive(OWNER, 'layerNormEpsilon', options.layerNormEpsilon ?? 1e-5);
  const seed = checkSeed(OWNER, 'seed', options.seed ?? 0);
  const name = checkName(OWNER, 'name', options.name);
  const smoeOptions = checkNested('smoe', options.smoe);
  const tmoeOptions = checkNested('tmoe', options.tmoe);
  return {
    dModel,
    maxSeqLen,
    layerNormEpsilon,
    name,
    smoeOptions: { ...smoeOptions, dModel, maxSeqLen, seed: `${seed}/smoe`, name: name && `${name}/smoe` },
    tmoeOptions: { ...tmoeOptions, dModel, seed: `${seed}/tmoe`, name: name && `${name}/tmoe` },
  };
}

/**
 * Checks `options` as `createSparseBlock` does, the sMoE and tMoE options included, without creating
 * any variable.
 *
 * @throws the same error `createSparseBlock` raises for these options.
 */
export function checkSparseBlockOptions(options: SparseBlockOptions): void {
  const { smoeOptions, tmoeOptions } = resolveSparseBlock(options);
  resolveSmoeOptions(SMOE_OWNER, smoeOptions);
  resolveBaseLayerOptions(tmoeOptions);
}

/**
 * Builds an sMLP sparse block. The sMoE update is added to the residual stream. The BASE layer then
 * returns the new stream itself (x + alpha * FFN_e(LN_e(x))), so the block adds no second residual.
 * Stacking the two modules this way is our reading of Yu et al. (2022, "Efficient Language Modeling
 * with Sparse all-MLP"), which names both modules but not how they are joined.
 *
 * Causality: in evaluation every position is causal (greedy BASE routing reads each token alone),
 * except the prefix positions of partial prediction. In training, the balanced assignment of the
 * BASE layer reads the whole batch, later tokens included, as BASE Layers does by design.
 */
export function createSparseBlock(options: SparseBlockOptions): SparseBlock {
  const { dModel, maxSeqLen, layerNormEpsilon, name, smoeOptions, tmoeOptions } = resolveSparseBlock(options);

  // Build both modules before any variable of the block, so that a bad nested option leaks nothing.
  const smoe = createSmoe(smoeOptions);
  let tmoe: BaseLayer;
  try {
    tmoe = createBaseLayer(tmoeOptions);
  } catch (error) {
    smoe.dispose();
    throw error;
  }
  const gamma = makeVariable(() => tf.ones([dModel]), name, 'norm_gamma');
  const beta = makeVariable(() => tf.zeros([dModel]), name, 'norm_beta');
  const variables = [gamma, beta, ...smoe.trainableVariables, ...tmoe.trainableVariables];

  return {
    smoe,
    tmoe,
    apply(x, context) {
      checkSequenceInput('SparseBlock.apply', x.shape, dModel, maxSeqLen);
      const normalised = layerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, layerNormEpsilon);
      const mixing = smoe.apply(normalised, context);
      const mixed = tf.add(x, mixing.output);
      const experts = tmoe.apply(mixed, context);

      const losses: Record<string, tf.Scalar> = {};
      for (const [key, loss] of Object.entries(mixing.losses)) losses[`smoe/${key}`] = loss;
      for (const [key, loss] of Object.entries(experts.losses)) losses[`tmoe/${key}`] = loss;
      return {
        output: experts.output as tf.Tensor3D,
        auxLoss: tf.add(mixing.auxLoss, experts.auxLoss) as tf.Scalar,
        losses,
        smoeStats: mixing.stats,
        tmoeStats: experts.stats,
        ...(mixing.lossMask === undefined ? {} : { lossMask: mixing.lossMask }),
      };
    },
    trainableVariables: variables,
    parameterCount() {
      const mixing = smoe.parameterCount();
      const experts = tmoe.parameterCount();
      return {
        total: 2 * dModel + mixing.total + experts.total,
        activePerToken: 2 * dModel + mixing.activePerToken + experts.activePerToken,
      };
    },
    flopsPerToken(seqLen = maxSeqLen) {
      return smoe.flopsPerToken(seqLen) + tmoe.flopsPerToken();
    },
    dispose() {
      smoe.dispose();
      tmoe.dispose();
      tf.dispose([gamma, beta]);
    },
  };
}

/** Throws unless a nested options field is undefined or a plain object. */
function checkNested<T extends object>(field: string, value: T | undefined): T | Record<string, never> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${OWNER}: ${field} must be an options object when given, received ${String(value)}`);
  }
  for (const fixed of ['dModel', 'maxSeqLen', 'seed', 'name']) {
    if (fixed in value) {
      throw new RangeError(`${OWNER}: ${field}.${fixed} is set by the block; set ${fixed} on the block options instead`);
    }
  }
  return value;
}

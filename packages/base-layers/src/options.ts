import {
  EXPERT_LAYER_OPTION_KEYS,
  requireAbove,
  requireInteger,
  requireNumber,
  requireOptions,
  resolveExpertLayerOptions,
  type Activation,
} from '@moebench/moe';
import { DEFAULT_EPSILON_SCALING, DEFAULT_RELATIVE_EPSILON } from './auction.js';

/** Options of a BASE layer. Every field but `dModel` has a default. */
export interface BaseLayerOptions {
  /** Model width d. Required, >= 1. */
  dModel: number;
  /** Experts E. Training needs at least E tokens per call. Default: 8. */
  numExperts?: number;
  /** Hidden width f of each expert's feed-forward network. Default: 4 * dModel. */
  hiddenSize?: number;
  /**
   * Residual feed-forward sublayers per expert, h <- h + FFN_i(LN_i(h)), applied in sequence before
   * the sigmoid gate mixes the result with the input (fairseq's `base_sublayers`). Default: 1.
   */
  sublayers?: number;
  /**
   * Final epsilon of the auction, relative to the spread (max - min) of each call's affinities:
   * the training assignment's total affinity is within tokens x auctionEpsilon x spread of the
   * optimum. Relative, because the scale of the affinities changes as the centroids train. > 0.
   * Default: 1e-4 (fairseq's solver bids with a fixed spread / 50 and no scaling).
   */
  auctionEpsilon?: number;
  /** Factor by which the auction's epsilon shrinks between rounds, > 1. Default: 8. */
  auctionEpsilonScaling?: number;
  /**
   * Gain of the orthogonal centroid init: the [E, d] centroid matrix has orthonormal rows (E <= d) or
   * columns (E > d), times this gain. Default: 0.1.
   */
  centroidGain?: number;
  /**
   * Scale of the fan-in init of each expert's input projection (see `ExpertBankOptions.initScale`).
   * The output projection always starts at zero, so the layer starts as the identity. Default: 1.
   */
  expertInitScale?: number;
  /** Activation inside each expert. Default: 'gelu'. */
  activation?: Activation;
  /** Epsilon of the experts' layer norms. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Seed of the weight init. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names; tfjs needs them unique. Default: none (tfjs numbers them). */
  name?: string;
}

/** Every option of a BASE layer, for the unknown-option check. */
const BASE_OPTION_KEYS: Record<keyof BaseLayerOptions, true> = {
  ...EXPERT_LAYER_OPTION_KEYS,
  sublayers: true,
  auctionEpsilon: true,
  auctionEpsilonScaling: true,
  centroidGain: true,
  layerNormEpsilon: true,
};

/** BASE options with every default filled in. */
export type ResolvedBaseLayerOptions = Required<Omit<BaseLayerOptions, 'name'>> & { name: string | undefined };

/**
 * Fills in the defaults and validates every field.
 *
 * @throws RangeError naming the field, the value received and the allowed range.
 */
export function resolveBaseLayerOptions(options: BaseLayerOptions): ResolvedBaseLayerOptions {
  const owner = 'BaseLayer';
  requireOptions(owner, options, BASE_OPTION_KEYS, 'dModel');
  return {
    ...resolveExpertLayerOptions(owner, options),
    sublayers: requireInteger(owner, 'sublayers', options.sublayers ?? 1, 1),
    auctionEpsilon: requireAbove(owner, 'auctionEpsilon', options.auctionEpsilon ?? DEFAULT_RELATIVE_EPSILON, 0),
    auctionEpsilonScaling: requireAbove(owner, 'auctionEpsilonScaling', options.auctionEpsilonScaling ?? DEFAULT_EPSILON_SCALING, 1),
    centroidGain: requireNumber(owner, 'centroidGain', options.centroidGain ?? 0.1, 0),
    layerNormEpsilon: requireAbove(owner, 'layerNormEpsilon', options.layerNormEpsilon ?? 1e-5, 0),
  };
}

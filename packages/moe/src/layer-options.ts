import { Rng, tf } from '@moebench/backend';
import { ACTIVATIONS, type Activation } from './activation.js';
import { ExpertBank } from './expert-bank.js';
import type { Router, RouterContext, RoutingPlan } from './types.js';
import { requireInteger, requireName, requireNumber, requireOneOf, requireSeed } from './validate.js';

/** The options every MoE layer built on an `ExpertBank` shares, as a user passes them. */
export interface ExpertLayerOptions {
  /** Model width d. Required, >= 1. */
  dModel: number;
  /** Experts E. Default: 8. */
  numExperts?: number;
  /** Hidden width f of each expert. Default: 4 * dModel. */
  hiddenSize?: number;
  /** Scale of the experts' fan-in init (see `ExpertBankOptions.initScale`). Default: 1. */
  expertInitScale?: number;
  /** Activation inside each expert. Default: 'gelu'. */
  activation?: Activation;
  /** Seed of the weight init. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names; tfjs needs them unique. Default: none (tfjs numbers them). */
  name?: string;
}

/** The keys of `ExpertLayerOptions`, for the unknown-option check of the layers that extend it. */
export const EXPERT_LAYER_OPTION_KEYS: Readonly<Record<keyof ExpertLayerOptions, true>> = {
  dModel: true,
  numExperts: true,
  hiddenSize: true,
  expertInitScale: true,
  activation: true,
  seed: true,
  name: true,
};

/** `ExpertLayerOptions` with every default filled in and validated. */
export interface ResolvedExpertLayerOptions {
  dModel: number;
  numExperts: number;
  hiddenSize: number;
  expertInitScale: number;
  activation: Activation;
  seed: number | string;
  name: string | undefined;
}

/**
 * Fills in and validates the shared expert-layer fields; `minExperts` is the smallest expert count
 * the layer's router accepts (default 1).
 *
 * @throws RangeError naming the field, the value received and what is allowed.
 */
export function resolveExpertLayerOptions(owner: string, options: ExpertLayerOptions, minExperts = 1): ResolvedExpertLayerOptions {
  const dModel = requireInteger(owner, 'dModel', options.dModel, 1);
  return {
    dModel,
    numExperts: requireInteger(owner, 'numExperts', options.numExperts ?? 8, minExperts),
    hiddenSize: requireInteger(owner, 'hiddenSize', options.hiddenSize ?? 4 * dModel, 1),
    expertInitScale: requireNumber(owner, 'expertInitScale', options.expertInitScale ?? 1, 0),
    activation: requireOneOf(owner, 'activation', options.activation ?? 'gelu', ACTIVATIONS),
    seed: requireSeed(owner, 'seed', options.seed ?? 0),
    name: requireName(owner, 'name', options.name),
  };
}

/** Creates the expert bank of a layer from its resolved options, named `<name>/<suffix>`. */
export function createLayerExpertBank(
  options: Omit<ResolvedExpertLayerOptions, 'seed' | 'name'> & { name?: string },
  rng: Rng,
  suffix = 'experts',
): ExpertBank {
  return new ExpertBank({
    numExperts: options.numExperts,
    dModel: options.dModel,
    hiddenSize: options.hiddenSize,
    activation: options.activation,
    initScale: options.expertInitScale,
    rng,
    name: options.name === undefined ? undefined : `${options.name}/${suffix}`,
  });
}

/**
 * Creates the weights Wr [d, E] of a linear router: a normal truncated at two standard deviations
 * with std sqrt(initScale / d), as a variable named `<name>/router`.
 */
export function createRouterWeights(dModel: number, numExperts: number, initScale: number, rng: Rng, name: string | undefined): tf.Variable {
  const initial = rng.truncatedNormal([dModel, numExperts], Math.sqrt(initScale / dModel));
  const weights = tf.variable(initial, true, name === undefined ? undefined : `${name}/router`);
  initial.dispose();
  return weights;
}

/** Sizes and init of a `LinearRouter`'s weights. */
export interface LinearRouterOptions {
  /** Model width d. */
  dModel: number;
  /** Experts E. */
  numExperts: number;
  /** Scale s of the init: std sqrt(s / d). */
  routerInitScale: number;
  /** Prefix of the variable name (`<name>/router`), or undefined. */
  name: string | undefined;
}

/**
 * A router whose only parameters are the weights Wr [d, E] of a linear map to the logits, as in
 * Switch and GShard. Subclasses give the name, k and the routing.
 */
export abstract class LinearRouter implements Router {
  /** Router name. */
  abstract readonly name: string;
  /** Choices per token. */
  abstract readonly k: number;
  /** Router weights Wr [d, E]. */
  readonly weights: tf.Variable;

  /** Creates the router weights (see `createRouterWeights`). */
  constructor(options: LinearRouterOptions, rng: Rng) {
    this.weights = createRouterWeights(options.dModel, options.numExperts, options.routerInitScale, rng, options.name);
  }

  /** Routes `features` [S, d]. */
  abstract route(features: tf.Tensor2D, context: RouterContext): RoutingPlan;

  /** The router weights. */
  get trainableVariables(): tf.Variable[] {
    return [this.weights];
  }

  /** Releases the router weights. */
  dispose(): void {
    this.weights.dispose();
  }
}

import {
  ACTIVATIONS,
  requireInteger,
  requireName,
  requireNumber,
  requireOneOf,
  requireOptions,
  requireSeed,
  type Activation,
} from '@moebench/moe';

/** Options of a Switch layer. Every field but `dModel` has a default. */
export interface SwitchOptions {
  /** Model width d. Required, >= 1. */
  dModel: number;
  /** Experts E. Default: 8. */
  numExperts?: number;
  /** Hidden width f of each expert. Default: 4 * dModel. */
  hiddenSize?: number;
  /** Capacity factor in training; <= 0 drops nothing. Default: 1.0. */
  capacityFactor?: number;
  /** Capacity factor in evaluation; <= 0 drops nothing. Default: 2.0. */
  evalCapacityFactor?: number;
  /**
   * Jitter: in training the router input is multiplied by noise uniform in [1 - eps, 1 + eps]
   * (the experts still see the unjittered input). 0 turns it off. In [0, 1). Default: 0.01.
   */
  jitterEps?: number;
  /** Weight alpha of the load-balancing loss, >= 0. Default: 0.01. */
  balanceLossWeight?: number;
  /** Weight beta of the router z-loss, >= 0; 0 leaves it out. Default: 0. */
  zLossWeight?: number;
  /**
   * Scale s of the router init: a normal truncated at two standard deviations with std
   * sqrt(s / dModel), so 0.1 is a tenth of the usual fan-in scale. 0 starts the router at zero. Default: 0.1.
   */
  routerInitScale?: number;
  /** Scale of the experts' fan-in init (see `ExpertBankOptions.initScale`). Default: 1. */
  expertInitScale?: number;
  /** Activation inside each expert. Default: 'gelu'. */
  activation?: Activation;
  /** Seed of the weight init. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names; tfjs needs them unique. Default: none (tfjs numbers them). */
  name?: string;
}

/** Every option of a Switch layer, for the unknown-option check. */
const SWITCH_OPTION_KEYS: Record<keyof SwitchOptions, true> = {
  dModel: true,
  numExperts: true,
  hiddenSize: true,
  capacityFactor: true,
  evalCapacityFactor: true,
  jitterEps: true,
  balanceLossWeight: true,
  zLossWeight: true,
  routerInitScale: true,
  expertInitScale: true,
  activation: true,
  seed: true,
  name: true,
};

/** Switch options with every default filled in. */
export type ResolvedSwitchOptions = Required<Omit<SwitchOptions, 'name'>> & { name: string | undefined };

/**
 * Fills in the defaults and validates every field.
 *
 * @throws RangeError naming the field, the value received and the allowed range (TypeError when
 *   `options` is not an object); an unknown option is an error too.
 */
export function resolveSwitchOptions(options: SwitchOptions): ResolvedSwitchOptions {
  const owner = 'Switch';
  requireOptions(owner, options, SWITCH_OPTION_KEYS, 'dModel');
  const dModel = requireInteger(owner, 'dModel', options.dModel, 1);
  return {
    dModel,
    numExperts: requireInteger(owner, 'numExperts', options.numExperts ?? 8, 1),
    hiddenSize: requireInteger(owner, 'hiddenSize', options.hiddenSize ?? 4 * dModel, 1),
    capacityFactor: requireNumber(owner, 'capacityFactor', options.capacityFactor ?? 1.0),
    evalCapacityFactor: requireNumber(owner, 'evalCapacityFactor', options.evalCapacityFactor ?? 2.0),
    jitterEps: requireNumber(owner, 'jitterEps', options.jitterEps ?? 0.01, 0, 0.999999),
    balanceLossWeight: requireNumber(owner, 'balanceLossWeight', options.balanceLossWeight ?? 0.01, 0),
    zLossWeight: requireNumber(owner, 'zLossWeight', options.zLossWeight ?? 0, 0),
    routerInitScale: requireNumber(owner, 'routerInitScale', options.routerInitScale ?? 0.1, 0),
    expertInitScale: requireNumber(owner, 'expertInitScale', options.expertInitScale ?? 1, 0),
    activation: requireOneOf(owner, 'activation', options.activation ?? 'gelu', ACTIVATIONS),
    seed: requireSeed(owner, 'seed', options.seed ?? 0),
    name: requireName(owner, 'name', options.name),
  };
}

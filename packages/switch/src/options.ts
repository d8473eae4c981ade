import {
  EXPERT_LAYER_OPTION_KEYS,
  requireNumber,
  requireOptions,
  resolveExpertLayerOptions,
  type ExpertLayerOptions,
} from '@moebench/moe';

/**
 * Options of a Switch layer. Every field but `dModel` has a default; the expert fields (`numExperts`
 * default 8, `hiddenSize` default 4 * dModel, `expertInitScale`, `activation`, `seed`, `name`) are
 * those of `ExpertLayerOptions`.
 */
export interface SwitchOptions extends ExpertLayerOptions {
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
}

/** Every option of a Switch layer, for the unknown-option check. */
const SWITCH_OPTION_KEYS: Record<keyof SwitchOptions, true> = {
  ...EXPERT_LAYER_OPTION_KEYS,
  capacityFactor: true,
  evalCapacityFactor: true,
  jitterEps: true,
  balanceLossWeight: true,
  zLossWeight: true,
  routerInitScale: true,
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
  return {
    ...resolveExpertLayerOptions(owner, options),
    capacityFactor: requireNumber(owner, 'capacityFactor', options.capacityFactor ?? 1.0),
    evalCapacityFactor: requireNumber(owner, 'evalCapacityFactor', options.evalCapacityFactor ?? 2.0),
    jitterEps: requireNumber(owner, 'jitterEps', options.jitterEps ?? 0.01, 0, 0.999999),
    balanceLossWeight: requireNumber(owner, 'balanceLossWeight', options.balanceLossWeight ?? 0.01, 0),
    zLossWeight: requireNumber(owner, 'zLossWeight', options.zLossWeight ?? 0, 0),
    routerInitScale: requireNumber(owner, 'routerInitScale', options.routerInitScale ?? 0.1, 0),
  };
}

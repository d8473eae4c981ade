import {
  EXPERT_LAYER_OPTION_KEYS,
  requireNumber,
  requireOneOf,
  requireOptions,
  resolveExpertLayerOptions,
  type ExpertLayerOptions,
} from '@moebench/moe';

/** Second-expert policies in training. */
export const SECOND_EXPERT_POLICIES = ['sampling', 'random', 'all'] as const;

/**
 * `sampling`: argmax of logits plus Gumbel noise with the first expert masked out (a draw from the
 * router distribution without the first expert), always kept. `random`: the plain second argmax,
 * kept only when a uniform draw is below 2 x g2, its gate before capacity: p2 / (p1 + p2) when gates
 * are normalised before capacity (the GShard paper), the plain probability p2 when they are normalised
 * after it (fairseq's default). `all`: the plain second argmax, always kept.
 */
export type SecondExpertPolicy = (typeof SECOND_EXPERT_POLICIES)[number];

/** When the two gates are renormalised to sum to one. */
export const GATE_NORMALIZATIONS = ['after-capacity', 'before-capacity'] as const;

/**
 * `after-capacity`: over the choices that survived capacity, so a token that lost its second choice
 * gets gate 1 on its first. `before-capacity`: over both chosen experts, so a kept gate keeps its share.
 */
export type GateNormalization = (typeof GATE_NORMALIZATIONS)[number];

/**
 * Options of a GShard layer. Every field but `dModel` has a default; the expert fields
 * (`hiddenSize` default 4 * dModel, `expertInitScale`, `activation`, `seed`, `name`) are those of
 * `ExpertLayerOptions`.
 */
export interface GShardOptions extends ExpertLayerOptions {
  /** Experts E, >= 2 (two distinct experts per token). Default: 8. */
  numExperts?: number;
  /** Second-expert policy in training; evaluation uses `evalSecondExpertPolicy`. Default: 'sampling'. */
  secondExpertPolicy?: SecondExpertPolicy;
  /**
   * Second-expert policy in evaluation. fairseq applies the training policy in evaluation too; our
   * reading takes the plain second argmax, so that evaluation draws nothing and is deterministic.
   * A drawing policy here needs `context.rng` in evaluation. Default: 'all'.
   */
  evalSecondExpertPolicy?: SecondExpertPolicy;
  /** When the gates are renormalised. Default: 'after-capacity'. */
  normalizeGates?: GateNormalization;
  /** Training capacity C = floor(2 x ceil(S / E) x capacityFactor); <= 0 drops nothing. Default: 1.0. */
  capacityFactor?: number;
  /**
   * Evaluation capacity C = ceil(evalCapacityTokenFraction x S); <= 0 uses the training formula.
   * Default: 0.25.
   */
  evalCapacityTokenFraction?: number;
  /** Weight of the load-balancing loss, >= 0. Default: 0.01. */
  balanceLossWeight?: number;
  /** Weight of the router z-loss, >= 0; 0 leaves it out. Default: 0. */
  zLossWeight?: number;
  /** Scale s of the router init: truncated normal with std sqrt(s / dModel). Default: 1. */
  routerInitScale?: number;
}

/** Every option of a GShard layer, for the unknown-option check. */
const GSHARD_OPTION_KEYS: Record<keyof GShardOptions, true> = {
  ...EXPERT_LAYER_OPTION_KEYS,
  secondExpertPolicy: true,
  evalSecondExpertPolicy: true,
  normalizeGates: true,
  capacityFactor: true,
  evalCapacityTokenFraction: true,
  balanceLossWeight: true,
  zLossWeight: true,
  routerInitScale: true,
};

/** GShard options with every default filled in. */
export type ResolvedGShardOptions = Required<Omit<GShardOptions, 'name'>> & { name: string | undefined };

/**
 * Fills in the defaults and validates every field.
 *
 * @throws RangeError naming the field, the value received and what is allowed.
 */
export function resolveGShardOptions(options: GShardOptions): ResolvedGShardOptions {
  const owner = 'GShard';
  requireOptions(owner, options, GSHARD_OPTION_KEYS, 'dModel');
  return {
    ...resolveExpertLayerOptions(owner, options, 2),
    secondExpertPolicy: requireOneOf(owner, 'secondExpertPolicy', options.secondExpertPolicy ?? 'sampling', SECOND_EXPERT_POLICIES),
    evalSecondExpertPolicy: requireOneOf(owner, 'evalSecondExpertPolicy', options.evalSecondExpertPolicy ?? 'all', SECOND_EXPERT_POLICIES),
    normalizeGates: requireOneOf(owner, 'normalizeGates', options.normalizeGates ?? 'after-capacity', GATE_NORMALIZATIONS),
    capacityFactor: requireNumber(owner, 'capacityFactor', options.capacityFactor ?? 1.0),
    evalCapacityTokenFraction: requireNumber(owner, 'evalCapacityTokenFraction', options.evalCapacityTokenFraction ?? 0.25, -Infinity, 1),
    balanceLossWeight: requireNumber(owner, 'balanceLossWeight', options.balanceLossWeight ?? 0.01, 0),
    zLossWeight: requireNumber(owner, 'zLossWeight', options.zLossWeight ?? 0, 0),
    routerInitScale: requireNumber(owner, 'routerInitScale', options.routerInitScale ?? 1, 0),
  };
}

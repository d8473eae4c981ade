import { requireInteger, requireNumber } from '@moebench/moe';

/** Inputs of `gshardCapacity`. */
export interface GShardCapacityOptions {
  /** Tokens S in the routing group. */
  tokens: number;
  /** Experts E. */
  numExperts: number;
  /** Training capacity factor; <= 0 drops nothing. */
  capacityFactor: number;
  /** Evaluation capacity as a fraction of S; <= 0 uses the training formula. */
  evalCapacityTokenFraction: number;
  /** Training or evaluation. */
  training: boolean;
}

/**
 * Returns GShard's slots per expert, as fairseq's top-2 gate sizes them: in training
 * C = floor(2 x ceil(S / E) x capacityFactor); in evaluation C = ceil(evalCapacityTokenFraction x S)
 * when the fraction is positive. Clamped to [1, S] (an expert cannot receive more than S choices,
 * since a token's two choices differ); a capacity factor <= 0 gives S.
 */
export function gshardCapacity(options: GShardCapacityOptions): number {
  const tokens = requireInteger('gshardCapacity', 'tokens', options.tokens, 1);
  const numExperts = requireInteger('gshardCapacity', 'numExperts', options.numExperts, 1);
  const capacityFactor = requireNumber('gshardCapacity', 'capacityFactor', options.capacityFactor);
  const fraction = requireNumber('gshardCapacity', 'evalCapacityTokenFraction', options.evalCapacityTokenFraction);

  let capacity: number;
  if (!options.training && fraction > 0) capacity = Math.ceil(fraction * tokens);
  else if (capacityFactor <= 0) capacity = tokens;
  else capacity = Math.floor(2 * Math.ceil(tokens / numExperts) * capacityFactor);
  return Math.min(tokens, Math.max(1, capacity));
}

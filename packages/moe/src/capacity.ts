import { requireInteger, requireNumber } from './validate.js';

/** Inputs of `computeCapacity`. */
export interface CapacityOptions {
  /** Tokens S in the routing group. */
  tokens: number;
  /** Experts E. */
  numExperts: number;
  /** Choices per token k. */
  k: number;
  /** Capacity factor; <= 0 means no dropping. */
  capacityFactor: number;
}

/**
 * Returns the slots per expert C = ceil(k * S / E * capacityFactor), clamped to [1, S]. A capacity
 * factor <= 0 returns S, which drops nothing: an expert can receive at most one choice per token,
 * since a token's k choices go to distinct experts.
 *
 * @throws RangeError when a field is not a valid count or the factor is not a finite number.
 */
export function computeCapacity({ tokens, numExperts, k, capacityFactor }: CapacityOptions): number {
  requireInteger('computeCapacity', 'tokens', tokens, 1);
  requireInteger('computeCapacity', 'numExperts', numExperts, 1);
  requireInteger('computeCapacity', 'k', k, 1);
  requireNumber('computeCapacity', 'capacityFactor', capacityFactor);
  if (capacityFactor <= 0) return tokens;
  const capacity = Math.ceil(((k * tokens) / numExperts) * capacityFactor);
  return Math.min(tokens, Math.max(1, capacity));
}

/**
 * Assigns each choice a slot inside its expert, as a running count per expert in token order, and
 * returns the slots, [S * k], with -1 for a choice past `capacity`. Choice j of token s is at
 * s * k + j. For k > 1 every first choice is counted before any second choice (and so on), so first
 * choices take slots first; a dropped choice still advances its expert's count, so once an expert's
 * first choices overflow, none of its second choices is kept. An expert index of -1 marks "no choice":
 * it gets slot -1 and advances no count.
 *
 * @throws RangeError for an expert index outside [-1, numExperts) or a length that is not a multiple of k.
 */
export function assignSlots(experts: Int32Array, k: number, numExperts: number, capacity: number): Int32Array {
  requireInteger('assignSlots', 'k', k, 1);
  requireInteger('assignSlots', 'numExperts', numExperts, 1);
  requireInteger('assignSlots', 'capacity', capacity, 0);
  if (experts.length % k !== 0) {
    throw new RangeError(`assignSlots: experts.length must be a multiple of k = ${k}, received ${experts.length}`);
  }

  const tokens = experts.length / k;
  const counts = new Int32Array(numExperts);
  const slots = new Int32Array(experts.length).fill(-1);
  for (let choice = 0; choice < k; choice++) {
    for (let token = 0; token < tokens; token++) {
      const index = token * k + choice;
      const expert = experts[index];
      if (expert === -1) continue;
      if (expert < 0 || expert >= numExperts || !Number.isInteger(expert)) {
        throw new RangeError(`assignSlots: expert index at ${index} must be in [-1, ${numExperts}), received ${expert}`);
      }
      const position = counts[expert]++;
      if (position < capacity) slots[index] = position;
    }
  }
  return slots;
}

/**
 * Returns the expert rows a capacity router makes the layer compute per token in training, E x C / S
 * for C = k x S / E x capacityFactor: k x capacityFactor, because the [E, C, d] buffer is computed in
 * full and its padding slots count. When the factor is <= 0 or C reaches S (k x capacityFactor >= E),
 * nothing can be dropped, the layer runs each expert on exactly its tokens (see `isDroplessPlan`),
 * and the figure is k. The value is exact when k x S / E x capacityFactor is a whole number below S;
 * otherwise the rounding of C adds less than E rows per group of S tokens, which it leaves out.
 *
 * @throws RangeError when k or numExperts is not a count or the factor is not a finite number.
 */
export function expertRowsPerToken(k: number, numExperts: number, capacityFactor: number): number {
  requireInteger('expertRowsPerToken', 'k', k, 1);
  requireInteger('expertRowsPerToken', 'numExperts', numExperts, 1);
  requireNumber('expertRowsPerToken', 'capacityFactor', capacityFactor);
  if (capacityFactor <= 0 || k * capacityFactor >= numExperts) return k;
  return k * capacityFactor;
}

/**
 * Balanced assignment of tokens to experts by Bertsekas' auction algorithm with epsilon scaling.
 *
 * The problem: S tokens, E experts, every expert takes exactly C = S / E tokens, and the total
 * affinity of the chosen (token, expert) pairs is maximised. As a square assignment problem this is
 * S tokens against S slots (C identical slots per expert), but the slots of one expert are
 * interchangeable ("similar objects"), so the solver never builds the S x S matrix. Each expert
 * keeps its C slot prices in a min-heap, and its price is the cheapest slot's price. A bidding token
 * compares experts by `a[s, e] - price(e)`, takes the cheapest slot of the best one, evicts its
 * holder, and sets that slot's price to where it would be indifferent between this expert and its
 * best other expert, plus epsilon. One bid costs O(E + log C).
 *
 * Epsilon scaling runs the auction repeatedly with a shrinking epsilon, keeping prices and every
 * token that still satisfies the tighter condition. Without it, tokens with equal affinities (the
 * same token id early in training, for example) push prices up by epsilon per bid.
 *
 * When S is not a multiple of E, P = E * C - S padding tokens fill the free slots, at most one per
 * expert: each expert's slots are split into C - 1 regular slots and one last slot, and a padding
 * token may only take a last slot, for which it has affinity 0. The result leaves the padding out,
 * so every expert receives C or C - 1 tokens, and which experts receive C - 1 is part of the
 * optimisation.
 */
import { NonFiniteError } from '@moebench/backend';

/** Options of `balancedAssignment`. */
export interface AuctionOptions {
  /**
   * Final epsilon, in affinity units: the auction stops in a state where every token's expert is
   * within epsilon of its best choice at the final prices, so the total affinity is within
   * `paddedTokens * epsilon` of the optimum. Takes precedence over `relativeEpsilon`. Default:
   * `relativeEpsilon` times the spread (max - min) of the affinities of the call, or 1e-6 when all
   * affinities are equal.
   */
  epsilon?: number;
  /**
   * Final epsilon as a fraction of the spread (max - min) of the affinities of the call, used when
   * `epsilon` is not given, so the precision follows the scale of the affinities. Default:
   * `DEFAULT_RELATIVE_EPSILON` (1e-4).
   */
  relativeEpsilon?: number;
  /**
   * Factor by which epsilon shrinks from one round to the next (epsilon scaling). The first round
   * starts at the affinity spread divided by this factor, the last one at `epsilon`. Must be greater
   * than 1. Default: 8.
   */
  epsilonScaling?: number;
}

/** Default `AuctionOptions.relativeEpsilon`. */
export const DEFAULT_RELATIVE_EPSILON = 1e-4;

/** Default `AuctionOptions.epsilonScaling`. */
export const DEFAULT_EPSILON_SCALING = 8;

/** The result of `balancedAssignment`. */
export interface BalancedAssignment {
  /** Expert of each token, [tokens] int32. */
  experts: Int32Array;
  /** Slots per expert: ceil(tokens / experts). Experts receive exactly this many tokens, or one fewer when padding was needed. */
  capacity: number;
  /** Final epsilon the auction ran with, in affinity units. */
  epsilon: number;
  /** Epsilon-scaling rounds run. */
  rounds: number;
  /** Bids placed over all rounds (a measure of the work done). */
  bids: number;
}

/**
 * Assigns `tokens` tokens to `experts` experts so that every expert gets `ceil(tokens / experts)`
 * slots (padding fills at most one slot per expert) and the total affinity is within
 * `ceil(tokens / experts) * experts * epsilon` of the maximum. Pure and deterministic: a bidder
 * choosing between equally good experts takes the lower index.
 *
 * @param affinities [tokens, experts] row-major, finite.
 * @throws RangeError when the counts are not positive integers, there are more experts than tokens,
 *   the array length does not match, or an option is out of range; NonFiniteError (a RangeError)
 *   when an affinity is NaN or infinite.
 *
 * @example
 * // Both tokens prefer expert 0; the one that loses less by moving goes to expert 1.
 * balancedAssignment(new Float32Array([3, 0, 2, 1]), 2, 2).experts; // Int32Array [0, 1]
 */
export function balancedAssignment(
  affinities: Float32Array | Float64Array,
  tokens: number,
  experts: number,
  options: AuctionOptions = {},
): BalancedAssignment {
  validateAssignmentInput(affinities, tokens, experts);
  const epsilonScaling = options.epsilonScaling ?? DEFAULT_EPSILON_SCALING;
  if (typeof epsilonScaling !== 'number' || !Number.isFinite(epsilonScaling) || epsilonScaling <= 1) {
    throw new RangeError(`balancedAssignment: epsilonScaling must be a finite number greater than 1, received ${String(epsilonScaling)}`);
  }

  // Affinities are shifted so that the smallest is 0: the optimal assignment is unchanged and the
  // prices stay near the size of the spread, where float64 resolves any reasonable epsilon.
  let lowest = Infinity;
  let highest = -Infinity;
  for (let i = 0; i < affinities.length; i++) {
    const value = affinities[i];
    if (value < lowest) lowest = value;
    if (value > highest) highest = value;
  }
  const spread = highest - lowest;
  const relativeEpsilon = options.relativeEpsilon ?? DEFAULT_RELATIVE_EPSILON;
  if (typeof relativeEpsilon !== 'number' || !Number.isFinite(relativeEpsilon) || relativeEpsilon <= 0) {
    throw new RangeError(`balancedAssignment: relativeEpsilon must be a finite number greater than 0, received ${String(relativeEpsilon)}`);
  }
  const finalEpsilon = options.epsilon ?? (spread > 0 ? relativeEpsilon * spread : 1e-6);
  if (typeof finalEpsilon !== 'number' || !Number.isFinite(finalEpsilon) || finalEpsilon <= 0) {
    throw new RangeError(`balancedAssignment: epsilon must be a finite number greater than 0, received ${String(options.epsilon)}`);
  }

  const capacity = Math.ceil(tokens / experts);
  const paddedTokens = capacity * experts;

  const shifted = new Float64Array(tokens * experts);
  for (let i = 0; i < tokens * experts; i++) shifted[i] = affinities[i] - lowest;

  const auction = new SlotAuction(shifted, tokens, experts, capacity, paddedTokens - tokens);
  let epsilon = Math.max(finalEpsilon, spread / epsilonScaling);
  let rounds = 0;
  for (;;) {
    auction.runRound(epsilon);
    rounds++;
    if (epsilon <= finalEpsilon) break;
    epsilon = Math.max(finalEpsilon, epsilon / epsilonScaling);
  }

  return {
    experts: auction.assignment(),
    capacity,
    epsilon: finalEpsilon,
    rounds,
    bids: auction.bids,
  };
}

/**
 * Assigns each token to its highest-affinity expert on its own, with no balancing (ties go to the
 * lower expert index). This is BASE routing in evaluation.
 *
 * @param affinities [tokens, experts] row-major.
 */
export function greedyAssignment(affinities: Float32Array | Float64Array, tokens: number, experts: number): Int32Array {
  validateCounts(tokens, experts);
  if (affinities.length !== tokens * experts) {
    throw new RangeError(`greedyAssignment: affinities has length ${affinities.length}, expected tokens * experts = ${tokens * experts}`);
  }
  const result = new Int32Array(tokens);
  for (let s = 0; s < tokens; s++) {
    const row = s * experts;
    let best = 0;
    for (let e = 1; e < experts; e++) {
      if (affinities[row + e] > affinities[row + best]) best = e;
    }
    result[s] = best;
  }
  return result;
}

function validateCounts(tokens: number, experts: number): void {
  if (!Number.isInteger(tokens) || tokens < 1) {
    throw new RangeError(`tokens must be a positive integer, received ${tokens}`);
  }
  if (!Number.isInteger(experts) || experts < 1) {
    throw new RangeError(`experts must be a positive integer, received ${experts}`);
  }
}

function validateAssignmentInput(affinities: Float32Array | Float64Array, tokens: number, experts: number): void {
  validateCounts(tokens, experts);
  if (experts > tokens) {
    throw new RangeError(
      `balancedAssignment: experts (${experts}) must not exceed tokens (${tokens}), or some expert would get no token`,
    );
  }
  if (affinities.length !== tokens * experts) {
    throw new RangeError(
      `balancedAssignment: affinities has length ${affinities.length}, expected tokens * experts = ${tokens} * ${experts} = ${tokens * experts}`,
    );
  }
  for (let i = 0; i < affinities.length; i++) {
    if (!Number.isFinite(affinities[i])) {
      throw new NonFiniteError(
        `balancedAssignment: affinity of token ${Math.floor(i / experts)} for expert ${i % experts} is ${affinities[i]}; affinities must be finite`,
      );
    }
  }
}

/**
 * Auction state. Slots are grouped into classes of identical slots: one class per expert of C slots,
 * or, with padding, a class of C - 1 regular slots and a class of one last slot per expert. A class's
 * price is the price of its cheapest slot; slot prices above it record what their holders bid.
 * Bidders are the real tokens, then the padding tokens, which may only bid for last-slot classes.
 */
class SlotAuction {
  bids = 0;

  private readonly bidders: number;
  private readonly classes: number;
  /** First class a padding token may bid for. */
  private readonly firstPaddingClass: number;
  /** Expert of each class. */
  private readonly classExpert: Int32Array;
  /** Slot range of class c: `[classStart[c], classStart[c + 1])`. */
  private readonly classStart: Int32Array;
  /** Class of each bidder, -1 while unassigned. */
  private readonly bidderClass: Int32Array;
  /**
   * Per class, a binary min-heap of its slots, ordered by price and, at equal prices, free slots
   * before held ones (so a bidder never evicts a holder while an equally cheap slot is free).
   */
  private readonly price: Float64Array;
  /** Bidder holding the slot at the same heap position, or -1 for a free slot. */
  private readonly holder: Int32Array;
  /** Circular queue of unassigned bidders. */
  private readonly queue: Int32Array;
  /** Work buffer of one class's holders. */
  private readonly scratch: Int32Array;

  constructor(
    private readonly affinity: Float64Array,
    private readonly tokens: number,
    private readonly experts: number,
    capacity: number,
    padding: number,
  ) {
    this.bidders = tokens + padding;
    const sizes: number[] = [];
    const owners: number[] = [];
    if (padding === 0) {
      for (let e = 0; e < experts; e++) {
        sizes.push(capacity);
        owners.push(e);
      }
    } else {
      if (capacity > 1) {
        for (let e = 0; e < experts; e++) {
          sizes.push(capacity - 1);
          owners.push(e);
        }
      }
      for (let e = 0; e < experts; e++) {
        sizes.push(1);
        owners.push(e);
      }
    }
    this.classes = sizes.length;
    this.firstPaddingClass = padding === 0 ? this.classes : this.classes - experts;
    this.classExpert = Int32Array.from(owners);
    this.classStart = new Int32Array(this.classes + 1);
    for (let c = 0; c < this.classes; c++) this.classStart[c + 1] = this.classStart[c] + sizes[c];

    this.bidderClass = new Int32Array(this.bidders).fill(-1);
    this.price = new Float64Array(this.bidders);
    this.holder = new Int32Array(this.bidders).fill(-1);
    this.queue = new Int32Array(this.bidders);
    this.scratch = new Int32Array(Math.max(...sizes));
  }

  /** Expert of each real token, [tokens]. */
  assignment(): Int32Array {
    const result = new Int32Array(this.tokens);
    for (let s = 0; s < this.tokens; s++) result[s] = this.classExpert[this.bidderClass[s]];
    return result;
  }

  /** Affinity of `bidder` for class `c`; padding tokens have 0 for every class they may take. */
  private value(bidder: number, c: number): number {
    const cheapest = this.price[this.classStart[c]];
    return bidder < this.tokens ? this.affinity[bidder * this.experts + this.classExpert[c]] - cheapest : -cheapest;
  }

  /**
   * Runs the auction at one epsilon until every bidder holds a slot.
   *
   * Invariant (epsilon complementary slackness against the other classes): a bidder that holds a
   * slot of class c at price b has `a[s, c] - b >= max over c' != c of (a[s, c'] - price of c') - epsilon`.
   * Prices only rise, so the invariant survives other bidders' bids, and since a class's price is at
   * most b, each bidder ends within epsilon of its best class at the final class prices. The linear
   * programming dual of this transportation problem has one price per class, so the total affinity
   * ends within `bidders * epsilon` of the optimum.
   */
  runRound(epsilon: number): void {
    const { price, holder, queue, bidderClass, bidders, classes, classStart } = this;
    const pending = this.startRound(epsilon);

    // The queue holds at most `bidders` entries at any time, because a bidder enters it only when
    // it is unassigned, so a circular buffer of that size never overflows.
    let head = 0;
    let waiting = pending;
    while (waiting > 0) {
      const bidder = queue[head];
      head = head + 1 === bidders ? 0 : head + 1;
      waiting--;

      let bestClass = -1;
      let bestValue = -Infinity;
      let secondValue = -Infinity;
      for (let c = bidder < this.tokens ? 0 : this.firstPaddingClass; c < classes; c++) {
        const value = this.value(bidder, c);
        if (value > bestValue) {
          secondValue = bestValue;
          bestValue = value;
          bestClass = c;
        } else if (value > secondValue) {
          secondValue = value;
        }
      }

      // The bidder bids the price at which it would be indifferent between this class and its best
      // other class, plus epsilon. The other slots of the same class do not count as second-best
      // objects: if they did, a class's slots would rise by epsilon one at a time (a price war
      // among identical objects).
      const base = classStart[bestClass];
      const size = classStart[bestClass + 1] - base;
      const bid = secondValue === -Infinity ? price[base] + epsilon : price[base] + bestValue - secondValue + epsilon;
      const evicted = holder[base];
      this.replaceRoot(base, size, bid, bidder);
      bidderClass[bidder] = bestClass;
      this.bids++;

      if (evicted >= 0) {
        bidderClass[evicted] = -1;
        const tail = head + waiting;
        queue[tail >= bidders ? tail - bidders : tail] = evicted;
        waiting++;
      }
    }
  }

  /**
   * Prepares a round: sets every slot of a class to the class price (the slot prices of the previous
   * round carry that round's larger epsilon), keeps the bidders that still satisfy the invariant at
   * the new epsilon, frees the others, and queues every unassigned bidder. Returns the number queued.
   */
  private startRound(epsilon: number): number {
    const { price, holder, queue, bidderClass, bidders, classes, classStart } = this;

    for (let c = 0; c < classes; c++) {
      for (let position = classStart[c]; position < classStart[c + 1]; position++) {
        const bidder = holder[position];
        if (bidder < 0) continue;
        let otherValue = -Infinity;
        for (let other = bidder < this.tokens ? 0 : this.firstPaddingClass; other < classes; other++) {
          if (other === c) continue;
          const value = this.value(bidder, other);
          if (value > otherValue) otherValue = value;
        }
        if (this.value(bidder, c) < otherValue - epsilon) {
          holder[position] = -1;
          bidderClass[bidder] = -1;
        }
      }
    }

    // All slots of a class now share one price, so free slots first, then held ones, is a valid heap.
    const heldBidders = this.scratch;
    for (let c = 0; c < classes; c++) {
      const base = classStart[c];
      const end = classStart[c + 1];
      price.fill(price[base], base, end);
      let count = 0;
      for (let position = base; position < end; position++) {
        if (holder[position] >= 0) heldBidders[count++] = holder[position];
      }
      holder.fill(-1, base, end - count);
      holder.set(heldBidders.subarray(0, count), end - count);
    }

    let pending = 0;
    for (let bidder = 0; bidder < bidders; bidder++) {
      if (bidderClass[bidder] < 0) queue[pending++] = bidder;
    }
    return pending;
  }

  /** Sets the root of the heap of `size` slots at `base` to (`newPrice`, `bidder`) and sifts it down. */
  private replaceRoot(base: number, size: number, newPrice: number, bidder: number): void {
    const { price, holder } = this;
    let position = 0;
    for (;;) {
      const left = 2 * position + 1;
      if (left >= size) break;
      let child = left;
      const right = left + 1;
      if (right < size && this.isCheaper(base + right, base + left)) child = right;
      // The new entry is held, so at an equal price it may go below the child either way.
      if (price[base + child] > newPrice) break;
      price[base + position] = price[base + child];
      holder[base + position] = holder[base + child];
      position = child;
    }
    price[base + position] = newPrice;
    holder[base + position] = bidder;
  }

  /** Heap order: lower price first, and at equal prices a free slot before a held one. */
  private isCheaper(i: number, j: number): boolean {
    const { price, holder } = this;
    return price[i] < price[j] || (price[i] === price[j] && holder[i] < 0 && holder[j] >= 0);
  }
}

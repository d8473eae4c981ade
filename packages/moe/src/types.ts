import type { Rng, tf } from '@moebench/backend';

/**
 * What a router sees besides the token features.
 */
export interface RouterContext {
  /** Training mode: jitter, sampling policies, balanced assignment and training capacity apply. */
  training: boolean;
  /** Token ids of the routed tokens, [tokens] int32, in the same order as the features (HASH needs them). */
  tokenIds?: Int32Array;
  /** Ids of the previous token at each position (-1 at a sequence start), for bigram hashing. */
  previousTokenIds?: Int32Array;
  /** Random stream for this step (jitter, Gumbel sampling, random routing). Required in training where a router draws. */
  rng?: Rng;
}

/**
 * A routing plan for one group of S tokens and k choices per token, as plain arrays plus the
 * differentiable gates. Choice j of token s lives at index s * k + j.
 */
export interface RoutingPlan {
  /** Number of experts E. */
  numExperts: number;
  /** Choices per token k (1 for Switch, HASH and BASE; 2 for GShard). */
  k: number;
  /** Slots per expert C. */
  capacity: number;
  /**
   * Set when the router's capacity limits nothing, so every choice is kept (HASH with no capacity
   * factor). `MoeFeedForward` then runs each expert on exactly its tokens instead of on an [E, C, d]
   * buffer padded to the busiest expert. A plan with C >= S is treated the same way without the flag.
   */
  dropless?: boolean;
  /**
   * Expert index of each choice, [S * k], or -1 when the router made no choice there (GShard's
   * random policy skipping a second expert). Such a choice takes no slot and is not counted as dropped.
   */
  experts: Int32Array;
  /** Slot of each choice inside its expert, [S * k], or -1 when the choice was dropped. */
  slots: Int32Array;
  /**
   * Gate weight of each choice, [S, k] float32, differentiable with respect to the router
   * parameters. Dropped choices may carry any value: combine ignores them.
   */
  gates: tf.Tensor2D;
  /** Weighted auxiliary losses the router defines (for example `balance`, `z`), each a scalar. */
  losses: Record<string, tf.Scalar>;
  /** Router probabilities [S, E] when the router has them (for entropy statistics); not differentiated. */
  probs?: tf.Tensor2D;
  /** Router-specific statistics of this plan (GShard's overflow of second choices, ...), copied into `RoutingStats.extra`. */
  extraStats?: Record<string, number>;
}

/** Statistics of one MoE layer for one step; all plain numbers so they can be stored as they are. */
export interface RoutingStats {
  /** Tokens whose choices went to each expert before dropping, [E] (all k choices counted). */
  tokensPerExpert: number[];
  /** Choices kept per expert after capacity, [E]. */
  keptPerExpert: number[];
  /** Fraction of all choices dropped by capacity. */
  droppedFraction: number;
  /** Mean entropy (nats) of the router distribution over experts, when the router has one. */
  routerEntropy: number | null;
  /** Busiest expert's load divided by the mean load. */
  maxOverMeanLoad: number;
  /** Number of experts that received no token. */
  idleExperts: number;
  /** Router-specific figures (for example GShard's second-choice overflow), by name. */
  extra: Record<string, number>;
}

/**
 * A router: token features [S, d] in, a routing plan out. Routers that own parameters keep them in
 * the layer that owns the router; the functions here take them as arguments.
 */
export interface Router {
  /** Short name, for example `switch`, `gshard`, `base`, `hash`. */
  readonly name: string;
  /** Routes `features` [S, d]. Must be called inside the caller's tidy or gradient scope. */
  route(features: tf.Tensor2D, context: RouterContext): RoutingPlan;
  /** The router's trainable variables (none for HASH). */
  readonly trainableVariables: tf.Variable[];
  /** Choices per token k, used for parameter and FLOP accounting. Default when absent: 1. */
  readonly k?: number;
  /**
   * Expert rows the layer computes per token in training, E x C / S, for FLOP accounting. A router
   * whose capacity limits returns capacity factor x k, because the [E, C, d] buffer is computed in
   * full whether its slots are used or not. A dropless router returns k. Default when absent: k.
   */
  expertRowsPerToken?(): number;
  /**
   * Forward FLOPs the router spends per token. Default when absent: 2 x the router's parameter
   * count, which is right for a linear router without bias (logits = x W).
   */
  flopsPerToken?(): number;
  /** Releases the router's variables. Default when absent: the layer disposes `trainableVariables`. */
  dispose?(): void;
}

/** What a MoE layer returns for one call. */
export interface MoeOutput {
  /** Layer output, the same shape as the input. */
  output: tf.Tensor;
  /** Sum of the router's weighted auxiliary losses (0 when it has none). */
  auxLoss: tf.Scalar;
  /** The individual weighted losses, by name. */
  losses: Record<string, tf.Scalar>;
  /** Routing statistics of this call. */
  stats: RoutingStats;
}

/** A MoE layer as models use it. */
export interface MoeLayer {
  /** Runs the layer on `input` [..., d]; token order is the flattened leading dimensions. */
  apply(input: tf.Tensor, context: RouterContext): MoeOutput;
  /** Every trainable variable of the layer: router and experts. */
  readonly trainableVariables: tf.Variable[];
  /** Parameters in total, and those one token uses. */
  parameterCount(): { total: number; activePerToken: number };
  /**
   * Forward FLOPs per token in training (2 x multiply-adds): the router plus the expert rows the layer
   * computes per token, padding slots of a capacity buffer included.
   */
  flopsPerToken(): number;
  /** Releases the layer's variables. */
  dispose(): void;
}

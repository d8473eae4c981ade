import type { tf } from '@moebench/backend';
import type { RoutingStats } from '@moebench/moe';

/** The seven architectures the suite compares. */
export const ARCHITECTURES = ['transformer', 'gmlp', 'gshard', 'switch', 'base', 'hash', 'smlp'] as const;

/** An architecture name. */
export type Architecture = (typeof ARCHITECTURES)[number];

/** What a model's forward pass returns. */
export interface ForwardOutput {
  /** Next-token logits, [batch, seqLen, vocabSize]. */
  logits: tf.Tensor3D;
  /** Sum of the weighted auxiliary losses of every MoE layer (0 for dense models). */
  auxLoss: tf.Scalar;
  /** Routing statistics of each MoE layer, in layer order, with the layer's name. */
  routing: Array<{ layer: string; stats: RoutingStats }>;
  /**
   * Mask of the positions that carry language-model loss, [batch, seqLen] float32 (1 = counts).
   * Absent means every position counts. sMLP with partial prediction sets it.
   */
  lossMask?: tf.Tensor2D;
}

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Training mode (routing jitter, balanced assignment, training capacity). */
  training: boolean;
  /** Seed of this step's random draws (routing noise); the same seed gives the same draws. */
  stepSeed?: number | string;
}

/** Parameter and compute accounting of a model, computed from its config. */
export interface ModelAccounting {
  /** Trainable parameters in total. */
  totalParameters: number;
  /** Parameters one token uses in a forward pass (embedding lookup counted once). */
  activeParametersPerToken: number;
  /** Forward FLOPs per token (2 x multiply-adds), token mixing included. */
  forwardFlopsPerToken: number;
}

/** A causal language model the suite can train. */
export interface LanguageModel {
  readonly architecture: Architecture;
  /** The validated config the model was built from. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Runs the model on token ids [batch, seqLen] int32. Call inside tf.tidy or a gradient scope. */
  forward(tokens: tf.Tensor2D, options: ForwardOptions): ForwardOutput;
  /** Every trainable variable, in a stable order. */
  readonly trainableVariables: tf.Variable[];
  /** Parameter and FLOP accounting. */
  accounting(): ModelAccounting;
  /** Writes weights (and any fixed tables, such as the HASH table) to `path`. */
  save(path: string): Promise<void>;
  /** Reads weights written by `save` into this model (same config). */
  load(path: string): Promise<void>;
  /** Releases every variable. */
  dispose(): void;
}

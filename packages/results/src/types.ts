import type { ModelStatus, RunStatus } from './schema.js';

/**
 * Run provenance, recorded so that a run can be reproduced and compared: code version,
 * software versions, backend, seeds, data and the full config. Fields beyond these are kept too.
 */
export interface RunManifest {
  /** Commit the code was at, or null outside a git checkout. */
  gitSha: string | null;
  /** Whether the working tree had uncommitted changes, or null when unknown. */
  gitDirty: boolean | null;
  /** Versions of Node.js, tfjs and the moebench packages, by name. */
  versions: Record<string, string>;
  /** Backend facts: name, threads, SIMD, device, and so on. */
  backend: Record<string, unknown>;
  /** Every seed the run uses, by purpose (for example `data`, `init`). */
  seeds: Record<string, number | string>;
  /** Corpus, tokenizer and split hashes (the data package's manifest). */
  data: Record<string, unknown>;
  /** The full suite config as run. */
  config: unknown;
  /** `hashConfig(config)`; runs with equal hashes ran the same config. */
  configHash: string;
  [extra: string]: unknown;
}

/** A run as stored. */
export interface RunRecord {
  id: string;
  suite: string;
  manifest: RunManifest;
  configHash: string;
  status: RunStatus;
  /** Error message of a failed run, or the signal of an interrupted one; null otherwise. */
  error: string | null;
  /** ISO 8601 timestamps (UTC). */
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** Input of `addModel`; the counts come from the model's accounting. */
export interface ModelInput {
  /** Name unique within the run, for example `switch` or `smlp-e8`. */
  name: string;
  /** Architecture, for example `transformer`, `gmlp`, `gshard`, `switch`, `base`, `hash`, `smlp`. */
  architecture: string;
  /** The model's full config. */
  config: unknown;
  /** Trainable parameters in total. */
  totalParameters: number;
  /** Parameters one token uses in a forward pass. */
  activeParametersPerToken: number;
  /** Forward FLOPs per token. */
  forwardFlopsPerToken: number;
}

/** A model as stored. */
export interface ModelRecord extends ModelInput {
  /** Store-wide id, used by every per-model table. */
  id: number;
  runId: string;
  status: ModelStatus;
  /** Reason a model was skipped, the error message of a failed one, or another status detail; null otherwise. */
  reason: string | null;
  /** Step at which the loss turned NaN or infinite, for `diverged`; null otherwise. */
  divergedStep: number | null;
  /** Steps a `failed` model completed before its error; null when unknown and for other statuses. */
  failedAfterStep: number | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** One training step's measurements. */
export interface StepInput {
  /** Step number; unique per model. */
  step: number;
  /** Language-model loss in nats per token (NaN is stored as null). */
  loss: number;
  /** Sum of the weighted auxiliary losses. Default: 0. */
  auxLoss?: number;
  /** Learning rate used at this step. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Training tokens seen up to and including this step. */
  tokensSeen: number;
  /** Training throughput of this step. */
  tokensPerSecond: number;
  /** Training wall-clock seconds up to the end of this step, evaluation excluded. */
  trainingSeconds: number;
}

/** A stored step: a loss, aux loss or gradient norm that was NaN reads as null. */
export interface StepRecord extends Omit<StepInput, 'loss' | 'auxLoss' | 'gradNorm'> {
  modelId: number;
  loss: number | null;
  auxLoss: number | null;
  gradNorm: number | null;
  recordedAt: string;
}

/** One evaluation on the validation batches. */
export interface EvaluationInput {
  /** Training step after which the evaluation ran; unique per model. */
  step: number;
  /** Training tokens seen so far. */
  tokensSeen: number;
  /** Training seconds so far (evaluation excluded). */
  trainingSeconds: number;
  /** Seconds this evaluation took. */
  evalSeconds: number;
  /** Mean validation loss in nats per token. */
  valLoss: number;
  /** exp(valLoss). */
  perplexity: number;
  /** valLoss / ln 2 / bytes per token. */
  bitsPerByte: number;
  /**
   * Validation loss in nats summed by sequence position over every validation sequence, [seqLen];
   * 0 at a position the model does not score. A value may be NaN or infinite (a diverged model).
   * Give it with `positionCounts` or not at all.
   */
  positionLossSums?: readonly number[];
  /** Scored targets at each sequence position over every validation sequence, [seqLen]; 0 at a position the model does not score. */
  positionCounts?: readonly number[];
}

/** A stored evaluation; a value that was NaN reads as null. */
export interface EvaluationRecord extends Omit<EvaluationInput, 'valLoss' | 'perplexity' | 'bitsPerByte' | 'positionLossSums' | 'positionCounts'> {
  modelId: number;
  valLoss: number | null;
  perplexity: number | null;
  bitsPerByte: number | null;
  recordedAt: string;
  /**
   * Loss sums by position, where a sum that was NaN or infinite reads as null. Null for an evaluation
   * recorded without them, which includes every evaluation of a store older than schema version 3.
   */
  positionLossSums: Array<number | null> | null;
  /** Scored targets by position; null for an evaluation recorded without them. */
  positionCounts: number[] | null;
}

/**
 * Routing statistics of one MoE layer for one step; the same fields as @moebench/moe's
 * RoutingStats, so a model's output can be stored as it is.
 */
export interface RoutingStatsInput {
  /** Choices routed to each expert before dropping, [experts]. */
  tokensPerExpert: number[];
  /** Choices kept per expert after capacity, [experts]. */
  keptPerExpert: number[];
  /** Fraction of all choices dropped by capacity. */
  droppedFraction: number;
  /** Mean router entropy in nats, or null for routers without a distribution. */
  routerEntropy: number | null;
  /** Busiest expert's load divided by the mean load. */
  maxOverMeanLoad: number;
  /** Experts that received no token. */
  idleExperts: number;
  /** Router-specific figures by name. Default: none. */
  extra?: Record<string, number>;
}

/** A stored routing row. */
export interface RoutingRecord extends Required<RoutingStatsInput> {
  modelId: number;
  step: number;
  /** Position of the layer among the model's MoE layers, from 0. */
  layerIndex: number;
  /** The layer's name as the model reports it. */
  layer: string;
}

/** A stored checkpoint. */
export interface CheckpointRecord {
  modelId: number;
  step: number;
  /** Path the checkpoint was written to. */
  path: string;
  /** Anything the trainer needs to resume besides the weights (sampler state, optimizer step). */
  state: unknown;
  recordedAt: string;
}

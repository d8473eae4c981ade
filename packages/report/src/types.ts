/**
 * Plain typed series the analysis works on. The run-store reader (`readReportData`) produces them,
 * and tests build them by hand.
 */

/** One evaluation on the validation batches. */
export interface EvaluationPoint {
  /** Optimiser step after which the evaluation ran. */
  step: number;
  /** Training tokens seen up to this evaluation. */
  tokens: number;
  /** Wall-clock training seconds up to this evaluation, evaluation time excluded. */
  trainingSeconds: number;
  /** Mean validation cross-entropy in nats per token. */
  validationLoss: number;
  /** Validation perplexity, exp(validationLoss). */
  perplexity: number;
  /** Validation bits per byte of text, or null when the store has none. */
  bitsPerByte: number | null;
  /**
   * Validation loss in nats summed by sequence position over every validation sequence, [seqLen],
   * NaN where it was not finite. Absent when the store has none, as in stores before schema
   * version 3. With `positionCounts`, it gives the perplexity on any set of positions.
   */
  positionLossSums?: number[];
  /** Scored validation targets at each sequence position, [seqLen]; 0 where the model scores none. Present with `positionLossSums`. */
  positionCounts?: number[];
}

/** One training step. */
export interface StepPoint {
  step: number;
  /** Training tokens seen up to and including this step. */
  tokens: number;
  /** Wall-clock training seconds up to the end of this step, evaluation time excluded. */
  trainingSeconds: number;
  /** Training loss of this step in nats per token. */
  loss: number;
}

/** Routing statistics of one MoE layer at one step. */
export interface RoutingPoint {
  step: number;
  /** Layer name, for example `block3.moe`. */
  layer: string;
  /** Routing choices each expert received before dropping, [experts] (all k choices counted). */
  tokensPerExpert: number[];
  /** Fraction of all routing choices dropped by capacity, in [0, 1]. */
  droppedFraction: number;
  /** Number of experts that received no token at this step. */
  idleExperts: number;
}

/** One trained model of a run: one architecture at one seed. */
export interface ModelRun {
  /** Model name as the suite labels it (for example `smlp`); runs of one model at several seeds share it. */
  name: string;
  /** Architecture: `transformer`, `gmlp`, `gshard`, `switch`, `base`, `hash` or `smlp`. */
  architecture: string;
  /** Seed of this training run. */
  seed: number;
  /** Final status: `done`, `diverged`, `interrupted`, `skipped`, `failed` or `running`. */
  status: string;
  /** Cause of a diverged, interrupted, skipped or failed run (the error message), when the store records it. */
  statusReason?: string;
  /** Trainable parameters in total. */
  totalParameters: number;
  /** Parameters one token uses in a forward pass. */
  activeParametersPerToken: number;
  /** Forward FLOPs per token; training FLOPs are counted as 3 x this per token. */
  forwardFlopsPerToken: number;
  /**
   * Routing choices per token (k) of the model's MoE layers: 2 for GShard, 1 for the others.
   * Used to turn choice counts into token shares for the router-collapse warning. Default 1.
   */
  choicesPerToken?: number;
  /** Evaluations in step order. */
  evaluations: EvaluationPoint[];
  /** Training steps in step order (may be empty; throughput then comes from the evaluations). */
  steps: StepPoint[];
  /** Routing statistics of every MoE layer and step (empty for dense models). */
  routing: RoutingPoint[];
  /**
   * Positions of each validation sequence that carry no loss, when the model skips some: sMLP with
   * `partial-prediction` routing scores only the positions after its router prefix. Absent when the
   * model is scored on every position.
   */
  unscoredPositions?: UnscoredPositions;
}

/** The leading positions of each validation sequence that a model's evaluation leaves out. */
export interface UnscoredPositions {
  /** Leading positions left out of the loss, per sequence. */
  skipped: number;
  /** Sequence length: positions per validation sequence. */
  seqLen: number;
  /** Cause of the gap, in words for the report, for example `partial-prediction routing`. */
  cause: string;
}

/** A model the run planned to train, from the run's manifest; it may not have started yet. */
export interface PlannedRun {
  /** Model name shared by its seeds, as in `ModelRun.name`. */
  name: string;
  architecture: string;
  seed: number;
}

/** Facts about the run that every chart footer and the report header show. */
export interface RunContext {
  runId: string;
  /** Corpus name and split, for example `sotu (byte-level tokenizer)`. */
  corpus: string;
  /** tfjs backend, for example `wasm`. */
  backend: string;
  /**
   * The kernel set a wasm run used, for example `kernels: native (OpenBLAS, 2 threads) BatchMatMul,
   * _FusedMatMul; moebench Sum, GatherV2` or `stock wasm kernels`; absent when the manifest lacks it.
   */
  kernels?: string;
  /** Hardware, for example `2 x Intel Xeon @ 2.2 GHz, no GPU`. */
  hardware: string;
  /** Software versions by name, for example `{ node: '20.20.2', '@tensorflow/tfjs-core': '4.22.0' }`. */
  versions: Record<string, string>;
  /** Git commit of the code that ran, or `unknown`. */
  gitSha: string;
  /** Whether the working tree had uncommitted changes. */
  gitDirty: boolean;
  /** Start of the run, ISO 8601. */
  date: string;
  /** Suite name, when the run came from a suite file. */
  suite?: string;
  /** The run's status in the store (`running`, `done`, `interrupted` or `failed`), when known. */
  status?: string;
  /**
   * Whether a process is still training the run, when the caller checked it (for example with the
   * run folder's lock). Absent when unknown. It only matters while `status` or a model's status is
   * `running`: the store cannot tell a live run from one whose process was killed.
   */
  processAlive?: boolean;
}

/** Everything the report is computed from. */
export interface ReportData {
  run: RunContext;
  models: ModelRun[];
  /**
   * Every model and seed the run planned to train, when the store records the plan. A planned run
   * missing from `models` has not started training yet.
   */
  planned?: PlannedRun[];
}

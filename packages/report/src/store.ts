/**
 * Reads one run of a @moebench/results store into the plain series the analysis works on.
 */
import {
  openStore,
  type EvaluationRecord,
  type ModelRecord,
  type ResultsStore,
  type RoutingRecord,
  type RunRecord,
  type StepRecord,
} from '@moebench/results';
import type { ModelRun, PlannedRun, ReportData, RunContext, UnscoredPositions } from './types.js';

/** Choices per token of the architectures whose router picks more than one expert. */
const TOP_K_BY_ARCHITECTURE: Record<string, number> = { gshard: 2 };

/**
 * Default `prefixFraction` of sMLP's partial-prediction routing. NOTE: a copy of the default in
 * @moebench/smlp's `createSmoe` (and @moebench/models' `smlpSparseWidths`), kept here so that the
 * report does not load tfjs; change all three together.
 */
const DEFAULT_PREFIX_FRACTION = 0.2;

/**
 * Reads run `runId` (default: the most recently started run) from the store at `storePath`, opened
 * read-only.
 *
 * @throws when the store cannot be opened, contains no run, or has no run `runId` (the message lists
 *   the runs it has).
 */
export function readReportData(storePath: string, runId?: string): ReportData {
  const store = openStore(storePath, { readonly: true });
  try {
    return reportDataFromStore(store, runId);
  } finally {
    store.close();
  }
}

/** Reads run `runId` (default: the latest) from an open store; see `readReportData`. */
export function reportDataFromStore(store: ResultsStore, runId?: string): ReportData {
  const run = runId === undefined ? store.latestRun() : store.getRun(runId);
  if (run === undefined) {
    const ids = store.listRuns().map((record) => record.id);
    if (runId === undefined) throw new Error(`The run store ${store.path} contains no run; run a suite first.`);
    throw new Error(`Run "${runId}" not found in ${store.path}. Runs in the store: ${ids.length === 0 ? 'none' : ids.join(', ')}.`);
  }

  const context = runContext(run);
  const models = store
    .listModels(run.id)
    .map((model) => modelRun(model, run, store.steps(model.id), store.evaluations(model.id), store.routing(model.id)));
  const planned = plannedRuns(run);
  return planned === undefined ? { run: context, models } : { run: context, models, planned };
}

/**
 * Reads the models a run planned to train from its manifest (`config.models`, each with `name`,
 * `architecture` and `seed`, as the CLI writes it), or undefined when the manifest has no such list.
 */
export function plannedRuns(run: RunRecord): PlannedRun[] | undefined {
  const entries = asRecord(run.manifest.config).models;
  if (!Array.isArray(entries)) return undefined;
  const planned: PlannedRun[] = [];
  for (const entry of entries) {
    const { name, architecture, seed } = asRecord(entry);
    if (typeof name !== 'string' || typeof architecture !== 'string') continue;
    const seedNumber = typeof seed === 'number' ? seed : seedOf({}, name, run);
    planned.push({ name: baseName(name, seedNumber), architecture, seed: seedNumber });
  }
  return planned;
}

/**
 * Returns the leading positions a model's evaluation leaves out of the loss, from its stored config:
 * sMLP with `smlp.smoe.routing: partial-prediction` scores no position inside its router prefix of
 * max(1, floor(prefixFraction x seqLen)) positions. Undefined for a model scored on every position.
 */
export function unscoredPositionsOf(architecture: string, config: unknown): UnscoredPositions | undefined {
  const record = asRecord(config);
  const smoe = asRecord(asRecord(record.smlp).smoe);
  if (architecture !== 'smlp' || smoe.routing !== 'partial-prediction') return undefined;
  const seqLen = record.seqLen;
  if (typeof seqLen !== 'number' || !Number.isInteger(seqLen) || seqLen < 2) return undefined;
  const prefixFraction = typeof smoe.prefixFraction === 'number' ? smoe.prefixFraction : DEFAULT_PREFIX_FRACTION;
  return { skipped: Math.max(1, Math.floor(prefixFraction * seqLen)), seqLen, cause: 'partial-prediction routing' };
}

/** Builds the provenance of a run from its record and manifest. */
export function runContext(run: RunRecord): RunContext {
  const manifest = run.manifest;
  const backend = asRecord(manifest.backend);
  const host = asRecord(backend.host);
  const data = asRecord(manifest.data);

  const versions: Record<string, string> = { ...manifest.versions };
  if (typeof backend.tfjsVersion === 'string' && !Object.keys(versions).some((name) => name.includes('tfjs-core'))) {
    versions['tfjs-core'] = backend.tfjsVersion;
  }

  let backendLabel = firstText(backend.backend, backend.name) ?? 'unknown backend';
  const wasm = asRecord(backend.wasm);
  if (typeof wasm.simd === 'boolean') {
    const threads = typeof wasm.threads === 'number' ? `, ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}` : '';
    backendLabel += ` (${wasm.simd ? 'SIMD' : 'no SIMD'}${threads})`;
  }
  const kernels = kernelLabel(wasm);

  const hardwareParts: string[] = [];
  if (Array.isArray(backend.gpus) && backend.gpus.length > 0) hardwareParts.push(backend.gpus.join(', '));
  if (typeof host.cpuModel === 'string') {
    hardwareParts.push(typeof host.cpuCores === 'number' ? `${host.cpuModel} (${host.cpuCores} cores)` : host.cpuModel);
  }

  const corpus = typeof data.corpus === 'string' ? data.corpus : 'unknown corpus';
  return {
    runId: run.id,
    corpus: typeof data.tokenizer === 'string' ? `${corpus}, ${data.tokenizer} tokenizer` : corpus,
    backend: backendLabel,
    ...(kernels === undefined ? {} : { kernels }),
    hardware: hardwareParts.length > 0 ? hardwareParts.join(', ') : 'unknown hardware',
    versions,
    gitSha: manifest.gitSha ?? 'unknown',
    gitDirty: manifest.gitDirty ?? false,
    date: run.startedAt,
    suite: run.suite,
    status: run.status,
  };
}

/**
 * Names the kernel set a wasm run used, from `describeBackend().wasm`: the native kernels (OpenBLAS
 * matrix products and moebench's fused kernels) with their thread count when active, moebench's
 * other replacement kernels, or the stock kernels.
 */
function kernelLabel(wasm: Record<string, unknown>): string | undefined {
  if (!Array.isArray(wasm.replacedKernels)) return undefined;
  const replaced = wasm.replacedKernels.filter((name): name is string => typeof name === 'string');
  if (replaced.length === 0) return 'stock wasm kernels';
  const native = asRecord(wasm.nativeKernels);
  const nativeNames = native.active === true && Array.isArray(native.kernels) ? native.kernels.filter((name): name is string => typeof name === 'string') : [];
  const parts: string[] = [];
  if (nativeNames.length > 0) {
    const threads = typeof native.threads === 'number' ? `, ${native.threads} thread${native.threads === 1 ? '' : 's'}` : '';
    parts.push(`native (OpenBLAS${threads}) ${nativeNames.join(', ')}`);
  }
  const others = replaced.filter((name) => !nativeNames.includes(name));
  if (others.length > 0) parts.push(`moebench ${others.join(', ')}`);
  return `kernels: ${parts.join('; ')}`;
}

function modelRun(
  model: ModelRecord,
  run: RunRecord,
  steps: StepRecord[],
  evaluations: EvaluationRecord[],
  routing: RoutingRecord[],
): ModelRun {
  const config = asRecord(model.config);
  const reason =
    model.status === 'diverged' && model.divergedStep !== null
      ? divergenceReason(model.divergedStep, model.reason)
      : model.reason ?? undefined;

  // An evaluation whose loss was NaN is stored with a null perplexity; it has no place on a curve.
  const measured = evaluations.filter((evaluation) => evaluation.perplexity !== null && Number.isFinite(evaluation.perplexity));
  const dropped = evaluations.length - measured.length;

  const seed = seedOf(config, model.name, run);
  const unscoredPositions = unscoredPositionsOf(model.architecture, config);
  return {
    name: baseName(model.name, seed),
    architecture: model.architecture,
    seed,
    status: model.status,
    statusReason: dropped > 0 ? [reason, `${dropped} evaluation(s) without a finite perplexity left out`].filter(Boolean).join('; ') : reason,
    totalParameters: model.totalParameters,
    activeParametersPerToken: model.activeParametersPerToken,
    forwardFlopsPerToken: model.forwardFlopsPerToken,
    choicesPerToken: choicesPerTokenOf(config, model.architecture),
    evaluations: measured.map((evaluation) => ({
      step: evaluation.step,
      tokens: evaluation.tokensSeen,
      trainingSeconds: evaluation.trainingSeconds,
      validationLoss: evaluation.valLoss ?? Math.log(evaluation.perplexity!),
      perplexity: evaluation.perplexity!,
      bitsPerByte: evaluation.bitsPerByte,
      ...positionFigures(evaluation),
    })),
    steps: steps.map((step) => ({
      step: step.step,
      tokens: step.tokensSeen,
      trainingSeconds: step.trainingSeconds,
      loss: step.loss ?? Number.NaN,
    })),
    routing: routing.map((row) => ({
      step: row.step,
      layer: row.layer,
      tokensPerExpert: row.tokensPerExpert,
      droppedFraction: row.droppedFraction,
      idleExperts: row.idleExperts,
    })),
    ...(unscoredPositions === undefined ? {} : { unscoredPositions }),
  };
}

/** Returns the per-position loss sums (a null sum read as NaN) and counts of an evaluation, when it has both. */
function positionFigures(evaluation: EvaluationRecord): { positionLossSums?: number[]; positionCounts?: number[] } {
  const { positionLossSums, positionCounts } = evaluation;
  if (positionLossSums === null || positionCounts === null) return {};
  return { positionLossSums: positionLossSums.map((sum) => sum ?? Number.NaN), positionCounts };
}

/**
 * Returns the model's seed: `config.seed`, else the manifest's seed for this model name, else the
 * run's `init` seed, else its first numeric seed, else 0.
 */
function seedOf(config: Record<string, unknown>, name: string, run: RunRecord): number {
  if (typeof config.seed === 'number') return config.seed;
  const seeds = run.manifest.seeds ?? {};
  if (typeof seeds[name] === 'number') return seeds[name];
  if (typeof seeds.init === 'number') return seeds.init;
  const numeric = Object.values(seeds).find((value): value is number => typeof value === 'number');
  return numeric ?? 0;
}

/**
 * Returns the model name shared by all its seeds: the CLI stores a suite with several seeds as
 * `<name>-seed<n>`, so that suffix is dropped when `n` is the model's seed.
 */
function baseName(name: string, seed: number): string {
  const suffix = `-seed${seed}`;
  return name.endsWith(suffix) && name.length > suffix.length ? name.slice(0, -suffix.length) : name;
}

/** Returns the routing choices per token: a numeric `k` or `topK` in the model config, else 2 for GShard and 1 otherwise. */
function choicesPerTokenOf(config: Record<string, unknown>, architecture: string): number {
  for (const key of ['k', 'topK']) {
    const value = config[key];
    if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  }
  return TOP_K_BY_ARCHITECTURE[architecture] ?? 1;
}

/** Returns the first argument that is a string, or undefined. */
function firstText(...values: unknown[]): string | undefined {
  return values.find((value): value is string => typeof value === 'string');
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * Describes a divergence from the reason the training loop stored. That is `loss L, gradient norm G`
 * when the loss or the gradient norm was not finite. It is the error message when the forward pass met
 * a non-finite value (for example a router's affinities), so no loss was computed.
 */
function divergenceReason(step: number, reason: string | null): string {
  if (reason === null || reason === '') return `loss not finite at step ${step}`;
  if (reason.startsWith('loss ')) return `loss not finite at step ${step} (${reason})`;
  return `a non-finite value at step ${step} (${reason})`;
}

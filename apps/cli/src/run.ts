import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { initBackend } from '@moebench/backend';
import { BatchSampler, evaluationBatches, prepareDataset, type DataManifest, type Dataset, type SamplerState } from '@moebench/data';
import { createModel, type LanguageModel, type ModelConfig } from '@moebench/models';
import {
  FolderLockedError,
  hashConfig,
  isFolderLocked,
  LOCK_FILE,
  LOCK_HOLDER_FILE,
  lockFolder,
  openStore,
  type FolderLock,
  type ModelRecord,
  type ResultsStore,
  type RunManifest,
} from '@moebench/results';
import { budgetFraction, readCheckpointInfo, train, type BatchSource, type TokenBatch, type TrainResult } from '@moebench/train';
import { collectEnvironment, kernelSetup, type EnvironmentFacts } from './environment.js';
import { describeFileError, prepareWritableFolder } from './folders.js';
import { planModels, type PlannedModel } from './plan.js';
import { formatNumber, ProgressReporter, type ProgressOutput } from './progress.js';
import { writeRunReport } from './report.js';
import { backendMismatchWarning, loadSuite, resolveSuitePath, validateSuite, type Suite } from './suite.js';

/** Request of `moebench run`, from the command line. */
export interface RunRequest {
  /** Suite name or file; null for the default (quick). Ignored with `resume`. */
  suite: string | null;
  /** Run folder; null for runs/<suite>-<UTC time>/. */
  out: string | null;
  /** Backend overriding the suite's; null keeps the suite's. */
  backend: string | null;
  /** Single seed overriding the suite's seeds; null keeps them. */
  seed: number | null;
  /** Model names or architectures to train; null trains all. */
  only: string[] | null;
  /** Run folder to continue; null starts a new run. */
  resume: string | null;
}

/** Settings a run folder keeps for `--resume`: the suite and options the run started with. */
interface SavedRunSettings {
  suite: Suite;
  only: string[] | null;
  backend: string;
  runId: string;
}

const SETTINGS_FILE = 'run.json';
const STORE_FILE = 'store.sqlite';
const REPORT_FOLDER = 'report';
const RUNS_FOLDER = 'runs';

/** Exit code of a run stopped by SIGINT or SIGTERM, as shells report a SIGINT death. */
export const INTERRUPTED_EXIT_CODE = 130;

/**
 * Runs a suite end to end. It first validates the suite, the options and every model's config
 * (without creating weights), then creates and locks the run folder and starts the backend. Only then does it load
 * and split the corpus, which `--resume` compares with the corpus the run started with. Each model
 * then trains at each seed under the suite's budget, with steps, evaluations, routing statistics and
 * checkpoints streamed into the run store, and the report is written at the end. A model whose training raises an error is marked
 * failed, and the suite goes on with the next model. A first SIGINT or SIGTERM stops the current
 * model after its step and writes a checkpoint. The model and the run are then marked interrupted,
 * and `--resume` continues from there. `--resume` also trains the failed models of a run again.
 *
 * @returns the process exit code: 0 when every model finished (done or diverged), 1 when a model
 *   could not be built and was skipped or its training failed, 130 when interrupted.
 */
export async function runCommand(request: RunRequest, output: ProgressOutput): Promise<number> {
  const progress = new ProgressReporter(output);

  // Everything that can be checked without data is checked first.
  let suite: Suite;
  let only: string[] | null;
  let backendName: string;
  let runDir: string;
  let resumedRunId: string | null = null;
  if (request.resume !== null) {
    runDir = resolve(request.resume);
    const settings = readSettings(runDir);
    suite = validateSuite(settings.suite, join(runDir, SETTINGS_FILE));
    only = settings.only;
    // Every model of a run trains on one backend, so that their tokens/s and times compare.
    if (request.backend !== null && request.backend !== settings.backend) {
      throw new Error(`--backend ${request.backend}: run folder ${runDir} started on backend "${settings.backend}"; resume it with --backend ${settings.backend} or without --backend.`);
    }
    backendName = settings.backend;
    resumedRunId = settings.runId;
  } else {
    suite = loadSuite(resolveSuitePath(request.suite ?? 'quick'));
    if (request.seed !== null) suite = { ...suite, seeds: [request.seed] };
    only = request.only;
    backendName = request.backend ?? suite.backend;
    runDir = request.out === null ? defaultRunFolder(suite.name) : resolve(request.out);
    if (existsSync(runDir) && !statSync(runDir).isDirectory()) {
      throw new Error(`--out ${runDir} is a file; allowed: a new folder or an empty one.`);
    }
  }
  const plans = planModels(suite, only);

  // A new run's folder that holds other files is rejected before anything is written into it or its
  // lock is touched, unless a live process holds it: then the lock error names that process.
  if (request.resume === null && existsSync(runDir) && !isFolderLocked(runDir)) checkEmpty(runDir);
  // The run folder is created (a new run) and locked before any backend or data work, so that an
  // unwritable folder or a second process on the same folder stops the command at once. Without
  // --out, two runs started in the same second get different folders.
  let createdRunDir = false;
  if (request.resume === null && request.out === null) {
    runDir = createNewFolder(runDir);
    createdRunDir = true;
  } else if (request.resume === null) {
    createdRunDir = prepareWritableFolder(runDir, 'the run folder', 'choose another --out');
  }
  const lock = lockRunFolder(runDir, request);
  let started = false;
  try {
    if (resumedRunId !== null) {
      checkResumable(runDir, resumedRunId);
    } else {
      checkEmpty(runDir);
    }
    if (lock.takenOverFrom !== null) {
      const holder = lock.takenOverFrom;
      progress.log(
        `Took over the lock of run folder ${runDir} from process ${holder.pid} on ${holder.host} (started at ${holder.startedAt}), ` +
          'which ended without releasing it, for example killed with SIGKILL.',
      );
    }
    const reportDir = join(runDir, REPORT_FOLDER);
    if (existsSync(reportDir)) prepareWritableFolder(reportDir, 'the report folder', 'remove it or make it a writable folder');
    const result = await runLocked({ suite, only, backendName, runDir, resumedRunId, plans, progress, lock, onStarted: () => (started = true) });
    return result;
  } finally {
    lock.release();
    // A new run that stopped before its store was created leaves no folder behind.
    if (createdRunDir && !started) removeIfOnlyLockFiles(runDir);
  }
}

interface LockedRun {
  suite: Suite;
  only: string[] | null;
  backendName: string;
  runDir: string;
  resumedRunId: string | null;
  plans: PlannedModel[];
  progress: ProgressReporter;
  lock: FolderLock;
  /** Called once the store is opened: from then on the run folder contains measurements. */
  onStarted: () => void;
}

// Runs the part of `run` that needs the run folder's lock: backend, data, training and report.
async function runLocked(context: LockedRun): Promise<number> {
  const { suite, only, backendName, runDir, resumedRunId, plans, progress, lock } = context;
  const backend = await initBackend(backendName);
  const environment = await collectEnvironment();
  progress.log(
    `moebench run: suite ${suite.name}, ${plans.length} model run(s), backend ${backend.name} ` +
      `(${kernelSetup(environment.backend as unknown as Record<string, unknown>)}), run folder ${runDir}`,
  );
  if (backend.autoFallbackReason) progress.log('Backend auto chose wasm: no native TensorFlow package loads (`moebench env` shows why).');
  const mismatch = backendMismatchWarning(suite, backend.name);
  if (mismatch !== null) progress.log(mismatch);
  if (resumedRunId !== null) checkKernelSetup(runDir, resumedRunId, environment);
  if (backend.name === 'wasm') checkWasmMemory(plans);

  const dataset = prepareDataset({
    corpus: { name: suite.data.corpus, paths: suite.data.paths },
    tokenizer: suite.data.tokenizer,
    batchSize: suite.data.batchSize,
    seqLen: suite.data.seqLen,
  });
  const validation = validationBatches(dataset, suite);
  if (resumedRunId !== null) checkSameData(runDir, resumedRunId, dataset, validation);
  progress.log(
    `Data: ${dataset.manifest.corpus}, ${formatNumber(dataset.train.tokenCount)} training tokens, ` +
      `${validation.length} validation batches of ${suite.data.batchSize} x ${suite.data.seqLen} tokens`,
  );
  if (validation.length < suite.training.evaluationBatches) {
    progress.log(
      `The validation split holds ${validation.length} batch(es) of ${suite.data.batchSize} x ${suite.data.seqLen} tokens, ` +
        `fewer than training.evaluationBatches = ${suite.training.evaluationBatches}, so every evaluation uses those ${validation.length}.`,
    );
  }

  const store = openStore(join(runDir, STORE_FILE));
  context.onStarted();
  const controller = new AbortController();
  let signalName: string | null = null;
  let runId = '';
  const current: { modelId: number | null } = { modelId: null };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalName !== null) {
      // A second signal leaves at once. Every store write is its own committed transaction, so
      // marking the run and the current model interrupted keeps the store consistent; the rows past
      // the model's last checkpoint are rewound by --resume.
      progress.log(`${signal} after ${signalName}: exiting without waiting for the current step.`);
      if (current.modelId !== null) store.setModelStatus(current.modelId, 'interrupted');
      // A run already marked done is only writing its report, so it stays done.
      if (runId !== '' && store.getRun(runId)?.status === 'running') store.setRunStatus(runId, 'interrupted', `${signalName}, then ${signal}`);
      store.close();
      lock.release();
      process.exit(INTERRUPTED_EXIT_CODE);
    }
    signalName = signal;
    progress.log(`${signal} received: stopping after the current step and writing a checkpoint (send it again to exit at once).`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (resumedRunId !== null) {
      if (store.getRun(resumedRunId) === undefined) throw new Error(`Run folder ${runDir}: ${STORE_FILE} contains no run "${resumedRunId}", so it cannot be resumed.`);
      runId = resumedRunId;
      store.setRunStatus(runId, 'running');
    } else {
      const manifest = buildManifest(suite, plans, dataset, validation, environment);
      runId = store.createRun({ suite: suite.name, manifest }).id;
      const settings: SavedRunSettings = { suite, only, backend: backendName, runId };
      writeFileSync(join(runDir, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`);
    }

    let skipped = 0;
    let failed = 0;
    for (const plan of plans) {
      if (controller.signal.aborted) break;
      const result = await trainPlan(plan, { suite, dataset, validation, store, runId, runDir, progress, signal: controller.signal, current });
      if (result === 'interrupted') break;
      if (result === 'skipped') skipped += 1;
      if (result === 'failed') failed += 1;
    }

    if (signalName !== null) {
      store.setRunStatus(runId, 'interrupted', signalName);
      progress.log(`Run interrupted. Store: ${join(runDir, STORE_FILE)}. Continue with: ${invocation()} run --resume ${runDir}`);
      return INTERRUPTED_EXIT_CODE;
    }
    store.setRunStatus(runId, 'done');
    const reportDir = join(runDir, REPORT_FOLDER);
    const written = await writeRunReport(join(runDir, STORE_FILE), runId, reportDir, (line) => progress.log(line), true);
    progress.log(`Run done. Store: ${join(runDir, STORE_FILE)}. Report: ${written}`);
    if (skipped > 0) {
      progress.log(`${skipped} model run(s) were skipped because they could not be built; see the lines above.`);
    }
    if (failed > 0) {
      progress.log(
        `${failed} of ${plans.length} model run(s) failed during training; see the lines above. ` +
          `After fixing the cause, train them again with: ${invocation()} run --resume ${runDir}`,
      );
    }
    return skipped > 0 || failed > 0 ? 1 : 0;
  } catch (error) {
    if (runId !== '') store.setRunStatus(runId, 'failed', (error as Error).message);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    store.close();
  }
}

interface TrainContext {
  suite: Suite;
  dataset: Dataset;
  validation: TokenBatch[];
  store: ResultsStore;
  runId: string;
  runDir: string;
  progress: ProgressReporter;
  signal: AbortSignal;
  /** Store id of the model being trained, read by the second-signal handler. */
  current: { modelId: number | null };
}

/**
 * Trains one planned model, or keeps it when the store already contains its final status. A model
 * that failed in an earlier attempt of the run is trained again, from its last checkpoint.
 */
async function trainPlan(plan: PlannedModel, context: TrainContext): Promise<TrainResult['status'] | 'kept' | 'skipped' | 'failed'> {
  const { suite, store, runId, progress } = context;
  const existing = store.getModel(runId, plan.name);
  if (existing && (existing.status === 'done' || existing.status === 'diverged' || existing.status === 'skipped')) {
    progress.log(`${plan.name}: kept from the earlier attempt of this run (${existing.status}).`);
    return 'kept';
  }
  if (existing?.status === 'failed') {
    const step = existing.failedAfterStep === null ? '' : ` after step ${existing.failedAfterStep}`;
    progress.log(`${plan.name}: training it again; it failed${step} in the earlier attempt: ${existing.reason ?? 'no message recorded'}`);
    rmSync(stackTracePath(context.runDir, plan.name), { force: true });
  }

  const record: ModelRecord =
    existing ??
    store.addModel(runId, {
      name: plan.name,
      architecture: plan.architecture,
      config: { ...storedConfig(plan.config), seed: plan.seed },
      totalParameters: plan.accounting.totalParameters,
      activeParametersPerToken: plan.accounting.activeParametersPerToken,
      forwardFlopsPerToken: plan.accounting.forwardFlopsPerToken,
    });
  const checkpointDir = join(context.runDir, 'checkpoints', plan.name);
  const checkpoint = await readCheckpointInfo(checkpointDir);
  // Rows past the checkpoint were written after it and are replayed by the resumed run. Without a
  // checkpoint the model starts over, keeping only the evaluation of its initial weights.
  if (existing) store.rewindModel(record.id, checkpoint?.steps ?? 0);
  const initialEvaluationStored = store.evaluations(record.id).some((evaluation) => evaluation.step === 0);

  const flops = plan.flopsError === null ? '' : `, ${(plan.flopsError * 100).toFixed(1)}% from the FLOP target`;
  progress.log(
    `${plan.name}: ${plan.architecture}, seed ${plan.seed}, ${formatNumber(plan.accounting.totalParameters)} parameters, ` +
      `${formatNumber(plan.accounting.forwardFlopsPerToken)} forward FLOPs/token${flops}${checkpoint ? `, resuming at step ${checkpoint.steps}` : ''}`,
  );
  const config: ModelConfig = plan.architecture === 'hash' ? { ...plan.config, hash: { ...plan.config.hash, unigramCounts: context.dataset.unigramCounts() } } : plan.config;
  let model: LanguageModel;
  try {
    model = createModel(plan.architecture, config, { seed: plan.seed });
  } catch (error) {
    // A model that cannot be built is recorded and skipped, so the rest of the suite still runs.
    const reason = `the model could not be built: ${describeError(error)}`;
    store.setModelStatus(record.id, 'skipped', { reason });
    progress.log(`${plan.name}: skipped, ${reason}`);
    return 'skipped';
  }

  context.current.modelId = record.id;
  // Steps completed so far, for the failure line; a resumed model starts at its checkpoint.
  let completedSteps = checkpoint?.steps ?? 0;
  const tokens = context.dataset.train.tokens;
  const sampler = new SamplerSource(new BatchSampler({ tokens, batchSize: suite.data.batchSize, seqLen: suite.data.seqLen, seed: plan.seed }), tokens);
  const training = suite.training;
  if (checkpoint === null) progress.startModel(plan.name, training.budget);
  let result: TrainResult;
  try {
    result = await train({
      model,
      batches: sampler,
      validation: context.validation,
      budget: training.budget,
      evaluationInterval: training.evaluationInterval,
      optimizer: { beta1: training.beta1, beta2: training.beta2, weightDecay: training.weightDecay },
      schedule: { peakLearningRate: training.learningRate, minLearningRate: training.minLearningRate, warmupSteps: training.warmupSteps },
      gradientClipNorm: training.gradientClipNorm,
      seed: plan.seed,
      checkpoint: { dir: checkpointDir, interval: training.checkpointInterval },
      resume: checkpoint !== null,
      evaluateAtStart: !initialEvaluationStored,
      signal: context.signal,
      onResume: (state) => {
        completedSteps = state.steps;
        progress.startModel(plan.name, training.budget, budgetFraction(training.budget, { steps: state.steps, tokens: state.tokens, seconds: state.trainingSeconds }));
      },
      onStep: (metrics) => {
        completedSteps = metrics.step;
        store.recordStep(record.id, {
          step: metrics.step,
          loss: metrics.crossEntropy,
          auxLoss: metrics.auxLoss,
          lr: metrics.learningRate,
          gradNorm: metrics.gradientNorm,
          tokensSeen: metrics.tokens,
          tokensPerSecond: metrics.tokensPerSecond,
          trainingSeconds: metrics.trainingSeconds,
        });
        if (metrics.routing.length > 0) store.recordRouting(record.id, metrics.step, metrics.routing);
        progress.step(metrics);
      },
      onEvaluation: (metrics) => {
        store.recordEvaluation(record.id, {
          step: metrics.step,
          tokensSeen: metrics.trainingTokens,
          trainingSeconds: metrics.trainingSeconds,
          evalSeconds: metrics.evaluationSeconds,
          valLoss: metrics.loss,
          perplexity: metrics.perplexity,
          bitsPerByte: metrics.bitsPerByte,
          // Loss by position, so the report can score every model on the positions sMLP is scored on.
          positionLossSums: metrics.positionLossSums,
          positionCounts: metrics.positionCounts,
        });
        progress.evaluation(metrics);
      },
      onCheckpoint: (saved) => {
        store.recordCheckpoint(record.id, { step: saved.steps, path: saved.path, state: saved.state });
      },
    });
  } catch (error) {
    // Any error the training raises (a kernel error, the wasm heap running out of memory, a store
    // write) ends this model only. Signals do not raise: they make train return `interrupted`.
    context.current.modelId = null;
    recordFailure(plan, record, model, error, completedSteps, context);
    return 'failed';
  }
  context.current.modelId = null;
  model.dispose();

  if (result.status === 'diverged') {
    const divergence = result.divergence;
    const reason = divergence?.message ?? `loss ${divergence?.loss}, gradient norm ${divergence?.gradientNorm}`;
    store.setModelStatus(record.id, 'diverged', { divergedStep: divergence?.step, reason });
  } else {
    store.setModelStatus(record.id, result.status);
  }
  progress.finishModel(result);
  return result.status;
}

/**
 * Frees the failed model's weights, marks it `failed` with the error and the steps it completed,
 * writes the error's stack to `errors/<model>.txt` in the run folder, and logs one line. An error
 * while freeing the model is logged and not raised, since the failure is already being handled. An
 * error while marking the model is raised with the training error as its cause, since a store that
 * cannot be written cannot record the rest of the suite either.
 */
function recordFailure(plan: PlannedModel, record: ModelRecord, model: LanguageModel, error: unknown, completedSteps: number, context: TrainContext): void {
  const { store, progress } = context;
  const message = describeError(error);
  try {
    model.dispose();
  } catch (disposeError) {
    progress.log(`${plan.name}: freeing the failed model's weights failed too: ${describeError(disposeError)}`);
  }

  try {
    store.setModelStatus(record.id, 'failed', { reason: message, failedAfterStep: completedSteps });
  } catch (storeError) {
    throw new Error(`${plan.name}: training failed (${message}), and marking the model failed in ${store.path} failed too: ${describeError(storeError)}`, {
      cause: error,
    });
  }

  const stackFile = stackTracePath(context.runDir, plan.name);
  let stackNote = '';
  try {
    mkdirSync(dirname(stackFile), { recursive: true });
    writeFileSync(stackFile, `${error instanceof Error && error.stack ? error.stack : message}\n`);
    stackNote = ` Stack trace: ${stackFile}.`;
  } catch {
    // The stack trace is a help for debugging; the store already records the failure.
  }
  progress.failModel();
  progress.log(
    `${plan.name}: training failed after step ${completedSteps}: ${message}. Marked failed in ${store.path}; the run continues.${stackNote}`,
  );
}

// Builds the path of the file in the run folder that keeps the stack trace of a model's training error.
function stackTracePath(runDir: string, modelName: string): string {
  return join(runDir, 'errors', `${modelName}.txt`);
}

/**
 * Formats a caught value as `Name: message` (only the message for a plain Error), without a final
 * period, since the text is embedded in sentences that add their own punctuation.
 */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return withoutFinalPeriod(String(error));
  if (error.message === '') return error.name;
  return withoutFinalPeriod(error.name === 'Error' ? error.message : `${error.name}: ${error.message}`);
}

// Drops one final period, keeping an ellipsis whole.
function withoutFinalPeriod(text: string): string {
  return /[^.]\.$/.test(text) ? text.slice(0, -1) : text;
}

// Adapts the data package's sampler to the training loop's batch source.
class SamplerSource implements BatchSource {
  constructor(
    private sampler: BatchSampler,
    private readonly tokens: Int32Array,
  ) {}
  next(): TokenBatch {
    return this.sampler.next();
  }
  getPosition(): unknown {
    return this.sampler.state();
  }
  setPosition(position: unknown): void {
    this.sampler = BatchSampler.restore(this.tokens, position as SamplerState);
  }
}

// Each batch carries the exact UTF-8 bytes of its targets, so bits per byte are exact for every tokenizer.
function validationBatches(dataset: Dataset, suite: Suite): TokenBatch[] {
  return evaluationBatches(dataset.validation.tokens, {
    batchSize: suite.data.batchSize,
    seqLen: suite.data.seqLen,
    maxBatches: suite.training.evaluationBatches,
    tokenizer: dataset.tokenizer,
  });
}

/**
 * Hashes the token ids and target byte counts of `batches` with SHA-256, so that runs and stores
 * can be checked to have evaluated on the same validation batches.
 */
export function hashBatches(batches: readonly TokenBatch[]): string {
  const hash = createHash('sha256');
  for (const batch of batches) {
    hash.update(`${batch.batchSize}x${batch.seqLen}:${batch.targetBytes ?? ''};`);
    hash.update(new Uint8Array(batch.inputs.buffer, batch.inputs.byteOffset, batch.inputs.byteLength));
    hash.update(new Uint8Array(batch.targets.buffer, batch.targets.byteOffset, batch.targets.byteLength));
  }
  return hash.digest('hex');
}

function buildManifest(suite: Suite, plans: PlannedModel[], dataset: Dataset, validation: readonly TokenBatch[], environment: EnvironmentFacts): RunManifest {
  const config = { suite, models: plans.map((plan) => ({ name: plan.name, architecture: plan.architecture, seed: plan.seed, config: storedConfig(plan.config) })) };
  return {
    gitSha: environment.gitSha,
    gitDirty: environment.gitDirty,
    versions: environment.versions,
    backend: { ...environment.backend },
    seeds: Object.fromEntries(plans.map((plan) => [plan.name, plan.seed])),
    data: { ...dataset.manifest, validationBatchesSha256: hashBatches(validation) },
    config,
    configHash: hashConfig(config),
  };
}

// The corpus unigram counts a HASH model is built with are data, not config: they stay out of the store.
function storedConfig(config: ModelConfig): ModelConfig {
  if (config.hash === undefined || !('unigramCounts' in config.hash)) return config;
  const { unigramCounts: _counts, ...hash } = config.hash;
  return { ...config, hash };
}

// Every model of a run trains on one kernel setup, so that their tokens/s and times compare: a resume
// with other kernel switches or threads is rejected before the data is prepared.
function checkKernelSetup(runDir: string, runId: string, environment: EnvironmentFacts): void {
  const storePath = join(runDir, STORE_FILE);
  if (!existsSync(storePath)) return;
  const store = openStore(storePath, { readonly: true });
  let startedWith: string | null = null;
  try {
    const run = store.getRun(runId);
    if (run !== undefined) startedWith = kernelSetup(run.manifest.backend);
  } finally {
    store.close();
  }
  const resumingWith = kernelSetup(environment.backend as unknown as Record<string, unknown>);
  if (startedWith !== null && startedWith !== resumingWith) {
    throw new Error(
      `--resume ${runDir}: the run started with ${startedWith}, and this process has ${resumingWith}. ` +
        'Resume it with the MOEBENCH_NATIVE_THREADS, MOEBENCH_FUSED_KERNELS, MOEBENCH_NATIVE_KERNELS and MOEBENCH_STOCK_KERNELS settings it started with.',
    );
  }
}

function readSettings(runDir: string): SavedRunSettings {
  const path = join(runDir, SETTINGS_FILE);
  if (!existsSync(path)) {
    throw new Error(`--resume ${runDir}: no ${SETTINGS_FILE} found there, so it is not a moebench run folder (or the run failed before it started).`);
  }
  let settings: Partial<SavedRunSettings>;
  try {
    settings = JSON.parse(readFileSync(path, 'utf8')) as Partial<SavedRunSettings>;
  } catch (error) {
    throw new Error(`--resume ${runDir}: ${SETTINGS_FILE} is not valid JSON (${(error as Error).message}); it must be the file moebench run wrote there.`);
  }
  const onlyValid = settings.only === null || (Array.isArray(settings.only) && settings.only.every((name) => typeof name === 'string'));
  if (typeof settings.runId !== 'string' || typeof settings.backend !== 'string' || !onlyValid) {
    throw new Error(`--resume ${runDir}: ${SETTINGS_FILE} lacks a valid runId, backend or only field; it must be the file moebench run wrote there.`);
  }
  return settings as SavedRunSettings;
}

// A finished run without failed models has nothing left to train, so --resume rejects it before
// any backend or data work. A finished run with failed models is resumed to train those again.
function checkResumable(runDir: string, runId: string): void {
  const storePath = join(runDir, STORE_FILE);
  if (!existsSync(storePath)) return;
  const store = openStore(storePath, { readonly: true });
  try {
    const status = store.getRun(runId)?.status;
    if (status === 'done' && !store.listModels(runId).some((model) => model.status === 'failed')) {
      throw new Error(
        `--resume ${runDir}: run ${runId} is already done, so there is nothing to continue; allowed: an interrupted or failed run, ` +
          `or a done run with failed models. Write its report again with: ${invocation()} report ${runDir}`,
      );
    }
  } finally {
    store.close();
  }
}

// The default run folder, runs/<suite>-<UTC time>/ under the working directory. The suite name is
// restricted to letters, digits, ".", "_" and "-", and this check keeps the folder inside runs/ even so.
function defaultRunFolder(suiteName: string): string {
  const parent = resolve(RUNS_FOLDER);
  const folder = resolve(parent, `${suiteName}-${utcStamp()}`);
  if (dirname(folder) !== parent) {
    throw new Error(`Suite name "${suiteName}" would put the run folder at ${folder}, outside ${parent}; give the suite a plain name.`);
  }
  return folder;
}

/**
 * Creates `folder`, or `folder-2`, `folder-3`, ... when it exists, and returns the one created. Each
 * try is one mkdir, which fails when the folder exists, so two processes never get the same folder.
 */
function createNewFolder(folder: string): string {
  prepareWritableFolder(dirname(folder), 'the runs folder', 'choose a run folder with --out');
  for (let attempt = 1; ; attempt++) {
    const candidate = attempt === 1 ? folder : `${folder}-${attempt}`;
    try {
      mkdirSync(candidate);
      return candidate;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw describeFileError(error, 'create the run folder', candidate, 'choose a run folder with --out');
    }
  }
}

/** The largest memory tfjs-backend-wasm 4.22 can grow to (its getHeapMax: 4 GiB less 64 KiB). */
const WASM_HEAP_MAX_BYTES = 4294901760;

/**
 * Rejects, before any data is loaded, a model whose weights, gradients and two AdamW moments (4 bytes
 * each, 16 bytes per parameter) alone exceed the wasm backend's memory, which would abort part-way
 * through building it. Activations need more on top, so a model that passes may still run out.
 */
function checkWasmMemory(plans: readonly PlannedModel[]): void {
  for (const plan of plans) {
    const bytes = plan.accounting.totalParameters * 16;
    if (bytes > WASM_HEAP_MAX_BYTES) {
      throw new Error(
        `Model "${plan.name}" has ${formatNumber(plan.accounting.totalParameters)} parameters: its weights, gradients and AdamW ` +
          `moments alone need ${(bytes / 2 ** 30).toFixed(1)} GiB, more than the 4 GiB the wasm backend can use. ` +
          'Use a smaller model (dModel, layers, experts) or the tensorflow backend.',
      );
    }
  }
}

// Takes the run folder's lock, or explains which process holds it.
function lockRunFolder(runDir: string, request: RunRequest): FolderLock {
  const command = request.resume !== null ? `moebench run --resume ${runDir}` : `moebench run ${request.suite ?? 'quick'} --out ${runDir}`;
  try {
    return lockFolder(runDir, command);
  } catch (error) {
    if (error instanceof FolderLockedError) {
      throw new Error(`Run folder ${error.message} Two processes on one run folder would write the same models.`);
    }
    throw describeFileError(error, 'lock the run folder', runDir, 'make the folder writable or choose another one');
  }
}

// A new run needs a folder of its own: empty but for the lock files this process just wrote.
function checkEmpty(runDir: string): void {
  const entries = readdirSync(runDir).filter((name) => name !== LOCK_FILE && name !== LOCK_HOLDER_FILE);
  if (entries.length === 0) return;
  const continuation = existsSync(join(runDir, SETTINGS_FILE))
    ? `continue it with --resume (${invocation()} run --resume ${runDir}), or choose another --out`
    : 'it is not a moebench run folder (it has no run.json), so choose another --out';
  throw new Error(`Run folder ${runDir} already exists and is not empty: ${continuation}.`);
}

// Removes a run folder this process created when it holds nothing but the lock files.
function removeIfOnlyLockFiles(runDir: string): void {
  try {
    const entries = readdirSync(runDir).filter((name) => name !== LOCK_FILE);
    if (entries.length === 0) rmSync(runDir, { recursive: true, force: true });
  } catch {
    // Leaving an empty folder behind is harmless: a new run accepts it as --out.
  }
}

/**
 * Returns how the user started moebench, for the commands that messages suggest: `pnpm moebench`
 * when the checkout's package script runs it (pnpm sets npm_lifecycle_event to the script's name),
 * `moebench` otherwise.
 */
export function invocation(): string {
  return process.env.npm_lifecycle_event === 'moebench' ? 'pnpm moebench' : 'moebench';
}

// A resumed run must train and evaluate on the text it started with, or its models would mix two
// corpora. The manifest's split hashes and validation batch hash are compared before any training.
function checkSameData(runDir: string, runId: string, dataset: Dataset, validation: readonly TokenBatch[]): void {
  const store = openStore(join(runDir, STORE_FILE), { readonly: true });
  let recorded: Record<string, unknown> | undefined;
  try {
    recorded = store.getRun(runId)?.manifest.data;
  } finally {
    store.close();
  }
  if (recorded === undefined) return;
  const changes = dataChanges(recorded, dataset.manifest, hashBatches(validation));
  if (changes.length > 0) {
    throw new Error(
      `--resume ${runDir}: the data differs from the data the run started with: ${changes.join('; ')}. ` +
        'Restore the corpus files the run started with, or start a new run on the changed corpus.',
    );
  }
}

/** Lists the differences between a manifest's recorded data facts and the data prepared now. */
export function dataChanges(recorded: Record<string, unknown>, current: DataManifest, validationBatchesSha256: string): string[] {
  const changes: string[] = [];
  if (recorded.tokenizer !== current.tokenizer) changes.push(`tokenizer ${String(recorded.tokenizer)} is now ${current.tokenizer}`);
  const splits = (recorded.splits ?? {}) as Record<string, { sha256?: unknown; bytes?: unknown } | undefined>;
  for (const name of ['train', 'validation'] as const) {
    const before = splits[name];
    const now = current.splits[name];
    if (before?.sha256 !== now.sha256) {
      changes.push(`the ${name} split changed (SHA-256 ${String(before?.sha256 ?? 'not recorded').slice(0, 12)}... of ${String(before?.bytes ?? '?')} bytes, now ${now.sha256.slice(0, 12)}... of ${now.bytes} bytes)`);
    }
  }
  if (changes.length === 0 && recorded.validationBatchesSha256 !== undefined && recorded.validationBatchesSha256 !== validationBatchesSha256) {
    changes.push('the validation batches changed');
  }
  return changes;
}

function utcStamp(): string {
  return new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}

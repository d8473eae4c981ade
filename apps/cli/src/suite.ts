import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { BACKEND_NAMES } from '@moebench/backend';
import { CORPUS_NAMES, TOKENIZER_NAMES, type CorpusName, type TokenizerName } from '@moebench/data';
import { ARCHITECTURES, type Architecture, type ModelConfig } from '@moebench/models';
import { BUDGET_UNITS, type Budget } from '@moebench/train';
import { UsageError } from './args.js';

/** A validated suite: what to train, on which data, under which budget. */
export interface Suite {
  /** Suite name, used in the default run folder name. */
  name: string;
  /** One or two sentences on what the suite is for. */
  description: string;
  /** Backend used unless `--backend` overrides it. Default `auto`. */
  backend: string;
  /** Corpus, tokenizer and batch shape. */
  data: {
    corpus: CorpusName;
    /** Files or folders for the `files` corpus. */
    paths: string[];
    tokenizer: TokenizerName;
    seqLen: number;
    batchSize: number;
  };
  /** Budget, evaluation, checkpoints and optimiser. */
  training: {
    budget: Budget;
    evaluationInterval: Budget;
    /** Maximum number of fixed validation batches. */
    evaluationBatches: number;
    checkpointInterval: Budget;
    learningRate: number;
    minLearningRate: number;
    warmupSteps: number;
    weightDecay: number;
    beta1: number;
    beta2: number;
    gradientClipNorm: number;
  };
  /** Seeds; each model trains once per seed. */
  seeds: number[];
  /** Forward FLOPs per token every model should have, or null when the suite does not match compute. */
  targetFlopsPerToken: number | null;
  /** Allowed relative deviation from targetFlopsPerToken. Default 0.05. */
  flopsTolerance: number;
  /** Model config fields shared by every model (vocabSize and seqLen come from the data section). */
  model: Partial<ModelConfig>;
  /** The models, in training order. */
  models: SuiteModel[];
}

/** One model of a suite. */
export interface SuiteModel {
  /** Unique label in the suite; defaults to the architecture name. */
  name: string;
  architecture: Architecture;
  /** Config fields of this model, over the suite's shared `model` fields. */
  config: Partial<ModelConfig>;
}

/** Suites shipped in the repository's suites/ folder. */
export const BUILTIN_SUITES = ['smoke', 'quick', 'paper'] as const;

/** Returns the repository's suites/ folder, found from this file's location (apps/cli/dist or apps/cli/src). */
// NOTE: the suites live at the repository root, outside the package's `files`, so the built-in
// suite names work only from a checkout; an installed package needs a suite file path.
export function suitesFolder(): string {
  return fileURLToPath(new URL('../../../suites/', import.meta.url));
}

/** An invalid suite file; the message names the file, the field, the value and what is allowed. */
export class SuiteError extends Error {
  constructor(source: string, field: string, value: unknown, allowed: string) {
    super(`Invalid suite ${source}: ${field} is ${show(value)}; allowed: ${allowed}.`);
    this.name = 'SuiteError';
  }
}

/**
 * Resolves a suite argument to a file: a built-in suite name (`smoke`, `quick`, `paper`) or a path
 * to a .yaml, .yml or .json file.
 *
 * @throws UsageError when the argument is neither a built-in suite nor an existing file.
 */
export function resolveSuitePath(argument: string): string {
  if ((BUILTIN_SUITES as readonly string[]).includes(argument)) return join(suitesFolder(), `${argument}.yaml`);
  const path = resolve(argument);
  if (!existsSync(path)) {
    throw new UsageError(`Suite "${argument}" not found: it is neither a built-in suite (${BUILTIN_SUITES.join(', ')}) nor an existing file.`);
  }
  if (statSync(path).isDirectory()) {
    throw new UsageError(`Suite "${argument}" is a folder; allowed: a built-in suite (${BUILTIN_SUITES.join(', ')}) or a .yaml, .yml or .json file.`);
  }
  return path;
}

/**
 * Reads and validates a suite file (YAML or JSON by extension). A relative `data.paths` entry is
 * resolved against the suite file's folder, so the suite reads the same files from any working
 * directory, and the returned suite carries absolute paths.
 */
export function loadSuite(path: string): Suite {
  const extension = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(extension)) {
    throw new Error(`Suite file ${path} has extension "${extension}"; allowed: .yaml, .yml, .json.`);
  }
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = extension === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new Error(`Suite file ${path} is not valid ${extension === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  const suite = validateSuite(raw, basename(path));
  const folder = dirname(resolve(path));
  const paths = suite.data.paths.map((entry) => (isAbsolute(entry) ? entry : resolve(folder, entry)));
  return { ...suite, data: { ...suite.data, paths } };
}

/** Maximum length of a suite name, which the default run folder name extends by a 16-character time stamp. */
export const MAX_SUITE_NAME_LENGTH = 64;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const NAME_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit';

const TOP_KEYS = ['name', 'description', 'backend', 'data', 'training', 'seeds', 'targetFlopsPerToken', 'flopsTolerance', 'model', 'models'];
const DATA_KEYS = ['corpus', 'paths', 'tokenizer', 'seqLen', 'batchSize'];
const TRAINING_KEYS = [
  'budget',
  'evaluationInterval',
  'evaluationBatches',
  'checkpointInterval',
  'learningRate',
  'minLearningRate',
  'warmupSteps',
  'weightDecay',
  'beta1',
  'beta2',
  'gradientClipNorm',
];
const MODEL_ENTRY_KEYS = ['name', 'architecture', 'config'];
// vocabSize and seqLen follow from the data section, so a suite cannot set them per model.
const DERIVED_CONFIG_KEYS = ['vocabSize', 'seqLen'];

/**
 * Validates a parsed suite object. Every field is checked before anything runs, and the first
 * problem raises a SuiteError naming the field path (for example `training.budget.unit`), the value
 * and the allowed values. Model config fields are checked with the models package's own rules by
 * `planModels` (plan.ts).
 */
export function validateSuite(raw: unknown, source: string): Suite {
  const check = new Checker(source);
  const top = check.object('(top level)', raw, TOP_KEYS);

  const name = check.string('name', top.name);
  // The name becomes a folder name under runs/, so it must not contain a path separator or "..".
  if (!NAME_PATTERN.test(name) || name.length > MAX_SUITE_NAME_LENGTH) {
    throw new SuiteError(source, 'name', name, `at most ${MAX_SUITE_NAME_LENGTH} characters: ${NAME_RULE}`);
  }
  const description = top.description === undefined || top.description === '' ? '' : check.string('description', top.description);
  const backend = top.backend === undefined ? 'auto' : check.oneOf('backend', top.backend, BACKEND_NAMES);

  const dataRaw = check.object('data', top.data, DATA_KEYS);
  const corpus = dataRaw.corpus === undefined ? 'sotu' : check.oneOf('data.corpus', dataRaw.corpus, CORPUS_NAMES);
  const paths = dataRaw.paths === undefined ? [] : check.array('data.paths', dataRaw.paths).map((path, index) => check.string(`data.paths[${index}]`, path));
  if (corpus === 'files' && paths.length === 0) throw new SuiteError(source, 'data.paths', dataRaw.paths, 'a non-empty list of files or folders when data.corpus is "files"');
  const data = {
    corpus,
    paths,
    tokenizer: dataRaw.tokenizer === undefined ? 'byte' : check.oneOf('data.tokenizer', dataRaw.tokenizer, TOKENIZER_NAMES),
    seqLen: check.integer('data.seqLen', dataRaw.seqLen, 2),
    batchSize: check.integer('data.batchSize', dataRaw.batchSize, 1),
  };

  const trainingRaw = check.object('training', top.training, TRAINING_KEYS);
  const learningRate = check.number('training.learningRate', trainingRaw.learningRate ?? 1e-3, 0, false);
  const budget = check.budget('training.budget', trainingRaw.budget);
  const training = {
    budget,
    evaluationInterval: check.budget('training.evaluationInterval', trainingRaw.evaluationInterval),
    evaluationBatches: check.integer('training.evaluationBatches', trainingRaw.evaluationBatches ?? 8, 1),
    checkpointInterval: trainingRaw.checkpointInterval === undefined ? budget : check.budget('training.checkpointInterval', trainingRaw.checkpointInterval),
    learningRate,
    minLearningRate: check.number('training.minLearningRate', trainingRaw.minLearningRate ?? learningRate / 10, 0, true),
    warmupSteps: check.integer('training.warmupSteps', trainingRaw.warmupSteps ?? 0, 0),
    weightDecay: check.number('training.weightDecay', trainingRaw.weightDecay ?? 0.1, 0, true),
    beta1: check.fraction('training.beta1', trainingRaw.beta1 ?? 0.9),
    beta2: check.fraction('training.beta2', trainingRaw.beta2 ?? 0.95),
    gradientClipNorm: check.number('training.gradientClipNorm', trainingRaw.gradientClipNorm ?? 1, 0, true),
  };
  if (training.minLearningRate > learningRate) {
    throw new SuiteError(source, 'training.minLearningRate', training.minLearningRate, `a number in [0, training.learningRate = ${learningRate}]`);
  }
  checkIntervals(source, training, data.batchSize * data.seqLen);

  const seedsRaw = top.seeds === undefined ? [0] : check.array('seeds', top.seeds);
  if (seedsRaw.length === 0) throw new SuiteError(source, 'seeds', seedsRaw, 'a non-empty list of integers');
  const seeds = seedsRaw.map((seed, index) => check.integer(`seeds[${index}]`, seed, 0));
  if (new Set(seeds).size !== seeds.length) throw new SuiteError(source, 'seeds', seeds, 'distinct integers');

  const targetFlopsPerToken = top.targetFlopsPerToken === undefined || top.targetFlopsPerToken === null ? null : check.number('targetFlopsPerToken', top.targetFlopsPerToken, 0, false);
  const flopsTolerance = top.flopsTolerance === undefined ? 0.05 : check.fraction('flopsTolerance', top.flopsTolerance);

  const model = top.model === undefined ? {} : check.modelConfig('model', top.model);

  const entries = check.array('models', top.models);
  if (entries.length === 0) throw new SuiteError(source, 'models', entries, 'a non-empty list of models');
  const models = entries.map((entry, index) => {
    const field = `models[${index}]`;
    const object = check.object(field, entry, MODEL_ENTRY_KEYS);
    const architecture = check.oneOf(`${field}.architecture`, object.architecture, ARCHITECTURES);
    const label = object.name === undefined ? architecture : check.string(`${field}.name`, object.name);
    if (!NAME_PATTERN.test(label)) {
      throw new SuiteError(source, `${field}.name`, label, NAME_RULE);
    }
    const config = object.config === undefined ? {} : check.modelConfig(`${field}.config`, object.config);
    return { name: label, architecture, config };
  });
  const seen = new Set<string>();
  models.forEach((entry, index) => {
    if (seen.has(entry.name)) throw new SuiteError(source, `models[${index}].name`, entry.name, 'a name no other model of the suite has (set `name` to tell two models of one architecture apart)');
    seen.add(entry.name);
  });

  return { name, description, backend, data, training, seeds, targetFlopsPerToken, flopsTolerance, model, models };
}

// Compares the intervals and warmup with the budget where their units convert: tokens are steps x
// tokensPerStep, and seconds compare only with seconds, since a step's duration is not known before training.
function checkIntervals(source: string, training: Suite['training'], tokensPerStep: number): void {
  const { budget } = training;
  const inBudgetUnit = (interval: Budget): number | null => {
    if (interval.unit === budget.unit) return interval.amount;
    if (interval.unit === 'steps' && budget.unit === 'tokens') return interval.amount * tokensPerStep;
    if (interval.unit === 'tokens' && budget.unit === 'steps') return interval.amount / tokensPerStep;
    return null;
  };
  const budgetText = `${budget.amount} ${budget.unit}`;
  for (const field of ['evaluationInterval', 'checkpointInterval'] as const) {
    const interval = training[field];
    const amount = inBudgetUnit(interval);
    if (amount !== null && amount > budget.amount) {
      throw new SuiteError(source, `training.${field}`, interval, `an interval no longer than training.budget (${budgetText}, with ${tokensPerStep} tokens per step)`);
    }
  }
  const warmupInBudgetUnit = inBudgetUnit({ unit: 'steps', amount: training.warmupSteps });
  if (warmupInBudgetUnit !== null && warmupInBudgetUnit >= budget.amount) {
    throw new SuiteError(source, 'training.warmupSteps', training.warmupSteps, `fewer steps than training.budget (${budgetText}, with ${tokensPerStep} tokens per step), so that the cosine decay runs`);
  }
}

class Checker {
  constructor(private readonly source: string) {}

  fail(field: string, value: unknown, allowed: string): never {
    throw new SuiteError(this.source, field, value, allowed);
  }

  object(field: string, value: unknown, keys: string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, value, `an object with fields ${keys.join(', ')}`);
    const object = value as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      if (!keys.includes(key)) this.fail(field === '(top level)' ? key : `${field}.${key}`, 'an unknown field', `the fields ${keys.join(', ')}`);
    }
    return object;
  }

  array(field: string, value: unknown): unknown[] {
    if (!Array.isArray(value)) this.fail(field, value, 'a list');
    return value;
  }

  string(field: string, value: unknown): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail(field, value, 'a non-empty string');
    return value;
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) this.fail(field, value, allowed.join(', '));
    return value as T;
  }

  integer(field: string, value: unknown, min: number): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) this.fail(field, value, `an integer >= ${min} and <= ${Number.MAX_SAFE_INTEGER}`);
    return value;
  }

  number(field: string, value: unknown, min: number, inclusive: boolean): number {
    const ok = typeof value === 'number' && Number.isFinite(value) && (inclusive ? value >= min : value > min);
    if (!ok) this.fail(field, value, `a number ${inclusive ? '>=' : '>'} ${min}`);
    return value as number;
  }

  fraction(field: string, value: unknown): number {
    if (typeof value !== 'number' || !(value > 0 && value < 1)) this.fail(field, value, 'a number > 0 and < 1');
    return value;
  }

  budget(field: string, value: unknown): Budget {
    const object = this.object(field, value, ['unit', 'amount']);
    const unit = this.oneOf(`${field}.unit`, object.unit, BUDGET_UNITS);
    const amount = unit === 'seconds' ? this.number(`${field}.amount`, object.amount, 0, false) : this.integer(`${field}.amount`, object.amount, 1);
    return { unit, amount };
  }

  modelConfig(field: string, value: unknown): Partial<ModelConfig> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, value, 'an object of model config fields');
    for (const key of DERIVED_CONFIG_KEYS) {
      if (key in value) this.fail(`${field}.${key}`, (value as Record<string, unknown>)[key], 'no value here: it follows from data.tokenizer and data.seqLen');
    }
    return value as Partial<ModelConfig>;
  }
}

function show(value: unknown): string {
  if (value === 'an unknown field') return value;
  if (value === undefined) return 'missing';
  // JSON.stringify writes NaN and the infinities as null, which would hide what the file contains.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * Returns the warning a run prints when a suite written for the `tensorflow` backend (a GPU) runs
 * on another one, or null. Such a suite still trains its full wall-clock budget per model, so on a
 * CPU it takes as long as on the GPU for far fewer steps, and its models may not fit the wasm
 * backend's memory.
 */
export function backendMismatchWarning(suite: Suite, backendName: string): string | null {
  if (suite.backend !== 'tensorflow' || backendName === 'tensorflow') return null;
  return (
    `Warning: suite ${suite.name} is sized for the tensorflow backend on a GPU, and backend ${backendName} runs it. ` +
    `Expect far fewer steps in the same training time, or a failure when its models do not fit in memory. ` +
    `On a CPU, run the quick suite instead.`
  );
}

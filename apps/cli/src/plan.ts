import { createTokenizer } from '@moebench/data';
import { accountModel, LAYER_OPTION_KEYS, layerOptionKeysOf, matchCompute, resolveConfig, validateModelConfig, type Architecture, type ModelAccounting, type ModelConfig } from '@moebench/models';
import { UsageError } from './args.js';
import type { Suite } from './suite.js';

/** One training run of a suite: a model at a seed, with its final config. */
export interface PlannedModel {
  /** Name in the store and in checkpoints: the suite name, plus `-seed<n>` when the suite has several seeds. */
  name: string;
  /** The suite's model name, shared by every seed. */
  suiteName: string;
  architecture: Architecture;
  seed: number;
  /** Config the model is built from (vocabSize and seqLen filled in, widths matched when the suite sets a FLOP target). */
  config: ModelConfig;
  /** Accounting computed from the config. */
  accounting: ModelAccounting;
  /** (forward FLOPs - target) / target, or null when the suite sets no target. */
  flopsError: number | null;
}

/**
 * Builds and validates the config of every model the suite trains, in suite order, before any data
 * is loaded: shared `model` fields, then each model's own, then vocabSize and seqLen from the data
 * section. The layer packages' option objects are checked with `validateModelConfig` of
 * @moebench/models, which creates no weights.
 * With `targetFlopsPerToken`, the widths come from the models package's compute matching, which
 * raises when an architecture cannot land within the tolerance.
 *
 * @param only model names or architectures to keep; every entry must match at least one model, or a
 *   UsageError is raised.
 */
export function planModels(suite: Suite, only: string[] | null): PlannedModel[] {
  let entries = suite.models;
  if (only !== null) {
    for (const name of only) {
      if (!entries.some((entry) => entry.name === name || entry.architecture === name)) {
        const valid = [...new Set(entries.flatMap((entry) => [entry.name, entry.architecture]))].join(', ');
        throw new UsageError(`moebench run: --only: "${name}" is neither a model name nor an architecture of suite ${suite.name}. Valid: ${valid}.`);
      }
    }
    entries = entries.filter((entry) => only.includes(entry.name) || only.includes(entry.architecture));
  }

  const vocabSize = createTokenizer(suite.data.tokenizer).vocabSize;
  const plans: PlannedModel[] = [];
  for (const entry of entries) {
    const index = suite.models.indexOf(entry);
    // An options object in the model's own config that its architecture does not read would be ignored silently.
    const reads = layerOptionKeysOf(entry.architecture);
    const ignored = LAYER_OPTION_KEYS.filter((key) => key in entry.config && !reads.includes(key));
    if (ignored.length > 0) {
      throw new Error(
        `Suite ${suite.name}, model "${entry.name}" (${entry.architecture}): models[${index}].config.${ignored[0]}: ` +
          `the ${entry.architecture} architecture does not read "${ignored[0]}" options; it reads ` +
          `${reads.length === 0 ? 'none' : reads.map((key) => `"${key}"`).join(' and ')}. Remove it or change the architecture.`,
      );
    }
    const base = { ...suite.model, ...entry.config, vocabSize, seqLen: suite.data.seqLen } as ModelConfig;
    let config: ModelConfig;
    let flopsError: number | null = null;
    try {
      if (suite.targetFlopsPerToken !== null) {
        const match = matchCompute(suite.targetFlopsPerToken, base, { architectures: [entry.architecture], tolerance: suite.flopsTolerance })[entry.architecture];
        config = match.config;
        flopsError = match.relativeError;
      } else {
        config = base;
      }
      // The layer packages' own option checks, without weights; models are checked in suite order.
      validateModelConfig(entry.architecture, config);
      const accounting = accountModel(entry.architecture, resolveConfig(entry.architecture, config));
      for (const seed of suite.seeds) {
        const name = suite.seeds.length > 1 ? `${entry.name}-seed${seed}` : entry.name;
        plans.push({ name, suiteName: entry.name, architecture: entry.architecture, seed, config, accounting, flopsError });
      }
    } catch (error) {
      throw modelConfigError(suite, index, (error as Error).message);
    }
  }
  return plans;
}

// Names the suite, the model and, when the message names a field the suite sets, where the field is.
function modelConfigError(suite: Suite, index: number, message: string): Error {
  const entry = suite.models[index];
  const location = locateConfigField(suite, index, message);
  return new Error(`Suite ${suite.name}, model "${entry.name}" (${entry.architecture}): ${location === null ? '' : `${location}: `}${message}`);
}

/**
 * Finds the suite field an error message is about, for example `models[3].config.switch.capacityFator`.
 * It is the deepest field of the model's own config or the shared `model` section whose key the
 * message names as a word. Returns null when the message names none.
 */
export function locateConfigField(suite: Suite, index: number, message: string): string | null {
  const candidates = [
    ...leafPaths(suite.models[index].config, `models[${index}].config`),
    ...leafPaths(suite.model, 'model'),
  ];
  // Ties go to the field the message names first, then to the model's own config.
  let best: { path: string; depth: number; position: number } | null = null;
  for (const { path, key, depth } of candidates) {
    const word = new RegExp(`(^|[^A-Za-z0-9_])${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^A-Za-z0-9_]|$)`);
    const match = word.exec(message);
    if (match === null) continue;
    if (best === null || depth > best.depth || (depth === best.depth && match.index < best.position)) best = { path, depth, position: match.index };
  }
  return best?.path ?? null;
}

function leafPaths(value: unknown, prefix: string, depth = 0): Array<{ path: string; key: string; depth: number }> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return [];
  const paths: Array<{ path: string; key: string; depth: number }> = [];
  for (const [key, child] of Object.entries(value)) {
    const path = `${prefix}.${key}`;
    paths.push({ path, key, depth }, ...leafPaths(child, path, depth + 1));
  }
  return paths;
}

import { createTokenizer } from '@moebench/data';
import { accountModel, matchCompute, resolveConfig, type Architecture, type ModelAccounting, type ModelConfig } from '@moebench/models';
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
 * Builds and validates the config of every model the suite trains, before any data is loaded:
 * shared `model` fields, then each model's own, then vocabSize and seqLen from the data section.
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
      const accounting = accountModel(entry.architecture, resolveConfig(entry.architecture, config));
      for (const seed of suite.seeds) {
        const name = suite.seeds.length > 1 ? `${entry.name}-seed${seed}` : entry.name;
        plans.push({ name, suiteName: entry.name, architecture: entry.architecture, seed, config, accounting, flopsError });
      }
    } catch (error) {
      throw new Error(`Suite ${suite.name}, model "${entry.name}" (${entry.architecture}): ${(error as Error).message}`);
    }
  }
  return plans;
}

import { mkdir, readFile, rename, rm, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LanguageModel } from '@moebench/models';
import type { AdamW } from './adamw.js';

/** The training-loop state a checkpoint stores besides weights and moments. */
export interface LoopState {
  /** Optimiser steps done. */
  steps: number;
  /** Training tokens consumed. */
  tokens: number;
  /** Training seconds so far, evaluation and checkpoint time excluded. */
  trainingSeconds: number;
  /** Seconds spent in evaluation so far. */
  evaluationSeconds: number;
  /** Budget fraction at the end of warmup, where cosine decay starts; null while still in warmup. */
  warmupEndFraction: number | null;
  /** Step of the last evaluation, or null before the first one. */
  lastEvaluationStep: number | null;
  /** Next evaluation mark, in the evaluation interval's unit. */
  nextEvaluationAt: number;
  /** Next checkpoint mark, in the checkpoint interval's unit. */
  nextCheckpointAt: number;
  /** Position of the training batch source, as its `getPosition` returned it. */
  samplerPosition: unknown;
}

/** Contents of `latest.json` in a checkpoint directory. */
export interface CheckpointInfo {
  /** Optimiser steps done when the checkpoint was written. */
  steps: number;
  /** Folder of the checkpoint, relative to the checkpoint directory. */
  folder: string;
}

interface StateFile {
  format: 1;
  loop: LoopState;
  optimizerStep: number;
  variables: Array<{ name: string; size: number }>;
}

const LATEST = 'latest.json';

/**
 * Writes a checkpoint of the model weights, the optimiser moments and the loop state into
 * `dir/step-<steps>/`, then points `dir/latest.json` at it with an atomic rename, so a process killed
 * while writing leaves the previous checkpoint in place. Older checkpoint folders are removed once the
 * new one is complete, keeping `keep` of them (at least 1).
 */
export async function writeCheckpoint(dir: string, model: LanguageModel, optimizer: AdamW, loop: LoopState, keep = 1): Promise<CheckpointInfo> {
  const folder = `step-${String(loop.steps).padStart(8, '0')}`;
  const path = join(dir, folder);
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });

  await model.save(join(path, 'model'));

  const state = optimizer.getState();
  const sizes = state.firstMoments.map((moment) => moment.length);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  const moments = new Float32Array(2 * total);
  let offset = 0;
  for (const moment of [...state.firstMoments, ...state.secondMoments]) {
    moments.set(moment, offset);
    offset += moment.length;
  }
  await writeFile(join(path, 'optimizer.bin'), new Uint8Array(moments.buffer));

  const stateFile: StateFile = {
    format: 1,
    loop,
    optimizerStep: state.step,
    variables: optimizer.variables.map((variable, index) => ({ name: variable.name, size: sizes[index] })),
  };
  await writeFile(join(path, 'state.json'), JSON.stringify(stateFile));

  const info: CheckpointInfo = { steps: loop.steps, folder };
  const temporary = join(dir, `${LATEST}.tmp`);
  await writeFile(temporary, JSON.stringify(info));
  await rename(temporary, join(dir, LATEST));

  const folders = (await readdir(dir)).filter((name) => /^step-\d{8}$/.test(name)).sort();
  const stale = folders.filter((name) => name !== folder).slice(0, Math.max(0, folders.length - Math.max(1, keep)));
  for (const name of stale) await rm(join(dir, name), { recursive: true, force: true });
  return info;
}

/** Returns what `dir/latest.json` points at, or null when `dir` contains no complete checkpoint. */
export async function readCheckpointInfo(dir: string): Promise<CheckpointInfo | null> {
  const path = join(dir, LATEST);
  if (!existsSync(path)) return null;
  const info = JSON.parse(await readFile(path, 'utf8')) as CheckpointInfo;
  if (!Number.isInteger(info.steps) || typeof info.folder !== 'string') {
    throw new Error(`Checkpoint pointer ${path} is malformed: ${JSON.stringify(info)}`);
  }
  return info;
}

/**
 * Loads the latest checkpoint of `dir` into `model` and `optimizer` (both built with the same config
 * as when it was written) and returns its loop state, or null when there is none.
 */
export async function loadCheckpoint(dir: string, model: LanguageModel, optimizer: AdamW): Promise<LoopState | null> {
  const info = await readCheckpointInfo(dir);
  if (info === null) return null;
  const path = join(dir, info.folder);
  const stateFile = JSON.parse(await readFile(join(path, 'state.json'), 'utf8')) as StateFile;
  if (stateFile.format !== 1) throw new Error(`Checkpoint ${path} has format ${stateFile.format}; this version reads format 1`);

  const variables = optimizer.variables;
  if (stateFile.variables.length !== variables.length) {
    throw new Error(`Checkpoint ${path} contains ${stateFile.variables.length} variables, the model has ${variables.length}: was it written for another config?`);
  }
  const sizes = stateFile.variables.map((entry, index) => {
    if (entry.size !== variables[index].size) {
      throw new Error(`Checkpoint ${path}: variable ${index} has ${entry.size} values, the model's "${variables[index].name}" has ${variables[index].size}`);
    }
    return entry.size;
  });

  await model.load(join(path, 'model'));

  const bytes = await readFile(join(path, 'optimizer.bin'));
  const total = sizes.reduce((sum, size) => sum + size, 0);
  if (bytes.byteLength !== 8 * total) {
    throw new Error(`Checkpoint ${path}: optimizer.bin has ${bytes.byteLength} bytes, expected ${8 * total}`);
  }
  const moments = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const firstMoments: Float32Array[] = [];
  const secondMoments: Float32Array[] = [];
  let offset = 0;
  for (const size of sizes) {
    firstMoments.push(moments.slice(offset, offset + size));
    offset += size;
  }
  for (const size of sizes) {
    secondMoments.push(moments.slice(offset, offset + size));
    offset += size;
  }
  optimizer.setState({ step: stateFile.optimizerStep, firstMoments, secondMoments });
  return stateFile.loop;
}

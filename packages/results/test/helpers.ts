import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashConfig, type RunManifest } from '../src/index.js';

/** Creates a fresh folder for one test file's stores. */
export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'moebench-results-'));
}

/** Builds a complete manifest with made-up but well-formed values. */
export function sampleManifest(config: unknown = { suite: 'smoke', steps: 10 }): RunManifest {
  return {
    gitSha: '0123456789abcdef0123456789abcdef01234567',
    gitDirty: false,
    versions: { node: 'v20.20.2', '@tensorflow/tfjs-core': '4.22.0' },
    backend: { name: 'wasm', threads: 2, simd: true },
    seeds: { data: 1, init: 2 },
    data: { corpus: 'sotu', splits: { train: { sha256: 'ab'.repeat(32) } } },
    config,
    configHash: hashConfig(config),
  };
}

/** Model accounting for tests. */
export const SAMPLE_MODEL = {
  name: 'switch',
  architecture: 'switch',
  config: { dModel: 64, experts: 4 },
  totalParameters: 120_000,
  activeParametersPerToken: 48_000,
  forwardFlopsPerToken: 96_000,
};

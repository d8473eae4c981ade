/**
 * The PyTorch MoE peers (peer/moe_models.py) compute moebench's models: small moebench models with
 * random weights are exported with their logits, aux losses and gradients, and moe_models.py
 * --compare loads the same weights (and HASH tables) and must reproduce them within 1e-4.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createModel, type Architecture, type CheckpointTables, type LanguageModel, type ModelConfig } from '@moebench/models';

const PEER_DIR = fileURLToPath(new URL('../peer/', import.meta.url));
const PYTHON = process.env.MOEBENCH_PYTHON ?? '/usr/bin/python3';
const HAS_TORCH = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const BASE: ModelConfig = { vocabSize: 11, dModel: 8, layers: 2, seqLen: 6, heads: 2, ffnHidden: 12, experts: 3 };

/**
 * Cases whose routing draws no random numbers (Switch without jitter, GShard's `all` policy), so the
 * two implementations must agree: token dropping, the z-loss, both GShard gate normalisations,
 * bigram HASH tables, two BASE sublayers, and evaluation capacities.
 */
const CASES: [Architecture, ModelConfig, boolean][] = [
  ['switch', { ...BASE, switch: { jitterEps: 0, capacityFactor: 0.5 } }, true],
  ['switch', { ...BASE, layers: 4, moeEvery: 1, switch: { jitterEps: 0, capacityFactor: 1.0, zLossWeight: 0.001 } }, true],
  ['gshard', { ...BASE, experts: 4, gshard: { secondExpertPolicy: 'all', capacityFactor: 0.5 } }, true],
  ['gshard', { ...BASE, experts: 4, gshard: { secondExpertPolicy: 'all', capacityFactor: 0.75, normalizeGates: 'before-capacity' } }, true],
  ['hash', { ...BASE }, true],
  ['hash', { ...BASE, hash: { capacityFactor: 0.6 } }, true],
  ['hash', { ...BASE, hash: { kind: 'bigram', capacityFactor: 0.8 } }, true],
  ['base', { ...BASE }, true],
  ['base', { ...BASE, experts: 4, base: { sublayers: 2 } }, true],
  ['switch', { ...BASE, switch: { evalCapacityFactor: 0.5 } }, false],
  ['gshard', { ...BASE, experts: 4, gshard: { evalCapacityTokenFraction: 0.25 } }, false],
  ['gshard', { ...BASE, experts: 4 }, false],
  ['base', { ...BASE }, false],
];

/**
 * A model as createModel builds it. Every architecture's class extends EmbeddingLanguageModel, whose
 * public `namedVariables` getter and protected `tables()` method the LanguageModel interface leaves
 * out. The export reads both, because the peer loads variables by their checkpoint names and needs
 * the HASH tables.
 */
type ExportableModel = LanguageModel & {
  readonly namedVariables: ReadonlyArray<{ name: string; variable: tf.Variable }>;
  tables(): CheckpointTables;
};

/** Builds each case with random weights (so every layer matters) and records what moebench computes. */
function exportCases(): unknown[] {
  const rng = new Rng('benchmarks/moe-peer-match');
  const batch = 3;
  return CASES.map(([architecture, config, training]) => {
    const model = createModel(architecture, config, { seed: 3 }) as ExportableModel;
    try {
      const variables: Record<string, { shape: number[]; values: number[] }> = {};
      for (const { name, variable } of model.namedVariables) {
        const values = Float32Array.from({ length: variable.size }, () => 0.5 * rng.normal());
        variable.assign(tf.tensor(values, variable.shape));
        variables[name] = { shape: variable.shape, values: Array.from(values) };
      }
      const ids = Int32Array.from({ length: batch * config.seqLen }, () => rng.int(config.vocabSize));
      const upstream = Float32Array.from({ length: batch * config.seqLen * config.vocabSize }, () => rng.normal());
      // tf.tidy's types accept only tensor containers as its result, and ModelConfig is not one.
      // So the tidy returns the computed arrays, and the case is assembled outside it.
      const computed = tf.tidy(() => {
        const tokens = tf.tensor2d(ids, [batch, config.seqLen], 'int32');
        const output = model.forward(tokens, { training, stepSeed: 1 });
        const upstreamTensor = tf.tensor(upstream, output.logits.shape);
        // Gradients of sum(logits * upstream) + auxLoss.
        const { grads } = tf.variableGrads(() => {
          const again = model.forward(tokens, { training, stepSeed: 1 });
          return tf.add(tf.sum(tf.mul(again.logits, upstreamTensor)), again.auxLoss) as tf.Scalar;
        }, model.trainableVariables);
        const gradients: Record<string, number[]> = {};
        for (const { name, variable } of model.namedVariables) gradients[name] = Array.from(grads[variable.name].dataSync());
        return { logits: Array.from(output.logits.dataSync()), auxLoss: output.auxLoss.dataSync()[0], gradients };
      });
      return {
        architecture,
        config,
        training,
        batch,
        tokens: Array.from(ids),
        variables,
        tables: model.tables(),
        logits: computed.logits,
        auxLoss: computed.auxLoss,
        upstream: Array.from(upstream),
        gradients: computed.gradients,
      };
    } finally {
      model.dispose();
    }
  });
}

describe.skipIf(!HAS_TORCH)(`moe_models.py against moebench with ${PYTHON}${HAS_TORCH ? '' : ' (skipped: no torch for it)'}`, () => {
  let directory = '';
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'moe-peer-match-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('reproduces the logits, aux losses and gradients of 13 moebench cases', async () => {
    await initBackend('cpu');
    const file = join(directory, 'cases.json');
    writeFileSync(file, JSON.stringify(exportCases()));
    const run = spawnSync(PYTHON, [`${PEER_DIR}moe_models.py`, '--compare', file, '--threads', '1'], {
      encoding: 'utf8',
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    expect(run.stderr).not.toMatch(/Traceback/);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { case?: string; maxLogitDifference?: number; auxLossDifference?: number; maxGradientDifference?: number });
    const compared = rows.filter((row) => row.case !== undefined);
    expect(compared).toHaveLength(CASES.length);
    for (const row of compared) {
      expect(row.maxLogitDifference, row.case).toBeLessThan(1e-4);
      expect(row.auxLossDifference, row.case).toBeLessThan(1e-4);
      expect(row.maxGradientDifference, row.case).toBeLessThan(1e-4);
    }
    expect(run.status).toBe(0);
  }, 120_000);
});

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

/** Share of the positions that hold `FREQUENT_ID` in a skewed case, as in the bench's train-step-hash-skewed. */
const SKEWED_SHARE = 0.6;
const FREQUENT_ID = 4;

/** What a case sets beyond its model and mode. */
interface CaseOptions {
  /** Token ids: `uniform` over the vocabulary (the default), or `skewed`, `SKEWED_SHARE` of them on `FREQUENT_ID`. */
  ids?: 'uniform' | 'skewed';
  /**
   * Whether every MoE layer drops nothing (C >= S: HASH without a capacity factor, GShard in evaluation
   * at its default token fraction 1), so that the peer runs each expert on its own rows. Default: false,
   * the [E, C, d] buffer.
   */
  perExpert?: boolean;
}

/**
 * Cases whose routing draws no random numbers (Switch without jitter, GShard's `all` policy), so the
 * two implementations must agree: token dropping, the z-loss, both GShard gate normalisations,
 * bigram HASH tables, two BASE sublayers, evaluation capacities, and dropless layers with even and
 * skewed loads. The cases share one random stream, so a new case goes last, which leaves the weights
 * and ids of the others unchanged.
 */
const CASES: [Architecture, ModelConfig, boolean, CaseOptions?][] = [
  ['switch', { ...BASE, switch: { jitterEps: 0, capacityFactor: 0.5 } }, true],
  ['switch', { ...BASE, layers: 4, moeEvery: 1, switch: { jitterEps: 0, capacityFactor: 1.0, zLossWeight: 0.001 } }, true],
  ['gshard', { ...BASE, experts: 4, gshard: { secondExpertPolicy: 'all', capacityFactor: 0.5 } }, true],
  ['gshard', { ...BASE, experts: 4, gshard: { secondExpertPolicy: 'all', capacityFactor: 0.75, normalizeGates: 'before-capacity' } }, true],
  ['hash', { ...BASE }, true, { perExpert: true }],
  ['hash', { ...BASE, hash: { capacityFactor: 0.6 } }, true],
  ['hash', { ...BASE, hash: { kind: 'bigram', capacityFactor: 0.8 } }, true],
  ['base', { ...BASE }, true],
  ['base', { ...BASE, experts: 4, base: { sublayers: 2 } }, true],
  ['switch', { ...BASE, switch: { evalCapacityFactor: 0.5 } }, false],
  ['gshard', { ...BASE, experts: 4, gshard: { evalCapacityTokenFraction: 0.25 } }, false],
  ['gshard', { ...BASE, experts: 4 }, false, { perExpert: true }],
  ['base', { ...BASE }, false],
  ['hash', { ...BASE, layers: 4, moeEvery: 1 }, true, { ids: 'skewed', perExpert: true }],
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

/** One case as exported: the JSON object that moe_models.py --compare reads, and moebench's expert loads. */
interface ExportedCase {
  /** Architecture, config, mode, tokens, weights, tables, and moebench's logits, aux loss and gradients. */
  json: Record<string, unknown>;
  /** Choices each MoE layer kept per expert in moebench's forward pass, [layer][expert], in layer order. */
  keptPerExpert: number[][];
}

/** A line of moe_models.py --compare: one case's largest differences and its dropless layers' loads. */
interface PeerRow {
  case?: string;
  maxLogitDifference?: number;
  auxLossDifference?: number;
  maxGradientDifference?: number;
  /** Per MoE layer, in layer order: the rows each expert ran when the layer ran each expert on its own rows, else null. */
  droplessLoads?: Array<number[] | null>;
}

/** Builds each case with random weights (so every layer matters) and records what moebench computes. */
function exportCases(): ExportedCase[] {
  const rng = new Rng('benchmarks/moe-peer-match');
  const batch = 3;
  return CASES.map(([architecture, config, training, options = {}]) => {
    const model = createModel(architecture, config, { seed: 3 }) as ExportableModel;
    try {
      const variables: Record<string, { shape: number[]; values: number[] }> = {};
      for (const { name, variable } of model.namedVariables) {
        const values = Float32Array.from({ length: variable.size }, () => 0.5 * rng.normal());
        variable.assign(tf.tensor(values, variable.shape));
        variables[name] = { shape: variable.shape, values: Array.from(values) };
      }
      const ids = Int32Array.from({ length: batch * config.seqLen }, () =>
        options.ids === 'skewed' && rng.next() < SKEWED_SHARE ? FREQUENT_ID : rng.int(config.vocabSize),
      );
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
        return {
          logits: Array.from(output.logits.dataSync()),
          auxLoss: output.auxLoss.dataSync()[0],
          gradients,
          keptPerExpert: output.routing.map(({ stats }) => stats.keptPerExpert),
        };
      });
      const json = {
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
      return { json, keptPerExpert: computed.keptPerExpert };
    } finally {
      model.dispose();
    }
  });
}

describe.skipIf(!HAS_TORCH)(`moe_models.py against moebench with ${PYTHON}${HAS_TORCH ? '' : ' (skipped: no torch for it)'}`, () => {
  let directory = '';
  let exported: ExportedCase[] = [];
  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'moe-peer-match-'));
    await initBackend('cpu');
    exported = exportCases();
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it(`matches moebench's outputs and dropless loads in ${CASES.length} cases`, () => {
    const file = join(directory, 'cases.json');
    writeFileSync(file, JSON.stringify(exported.map(({ json }) => json)));
    const run = spawnSync(PYTHON, [`${PEER_DIR}moe_models.py`, '--compare', file, '--threads', '1'], {
      encoding: 'utf8',
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    expect(run.stderr).not.toMatch(/Traceback/);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as PeerRow);
    const compared = rows.filter((row) => row.case !== undefined);
    expect(compared).toHaveLength(CASES.length);
    compared.forEach((row, index) => {
      const label = `case ${index}: ${row.case}`;
      expect(row.maxLogitDifference, label).toBeLessThan(1e-4);
      expect(row.auxLossDifference, label).toBeLessThan(1e-4);
      expect(row.maxGradientDifference, label).toBeLessThan(1e-4);
      // A dropless layer reports the rows it ran per expert, which must be moebench's kept choices per
      // expert. A layer that ran the [E, C, d] buffer reports null.
      const [, , , options = {}] = CASES[index];
      const { keptPerExpert } = exported[index];
      expect(row.droplessLoads, label).toEqual(options.perExpert === true ? keptPerExpert : keptPerExpert.map(() => null));
    });
    expect(run.status).toBe(0);
  }, 120_000);

  it('skews every layer of the skewed HASH case', () => {
    const index = CASES.findIndex(([, , , options]) => options?.ids === 'skewed');
    const { keptPerExpert } = exported[index];
    expect(keptPerExpert).toHaveLength(4);
    // One expert of every layer gets at least half the tokens.
    for (const loads of keptPerExpert) {
      const tokens = loads.reduce((sum, load) => sum + load, 0);
      expect(tokens).toBe(3 * BASE.seqLen);
      expect(Math.max(...loads)).toBeGreaterThanOrEqual(tokens / 2);
    }
  }, 120_000);
});

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@moebench/backend';
import { ARCHITECTURES, createModel, matchCompute, type ModelConfig } from '@moebench/models';
import type { PeerModelSpec } from '../src/cases/peer.js';

const PEER_DIR = fileURLToPath(new URL('../peer/', import.meta.url));
const PYTHON = process.env.MOEBENCH_PYTHON ?? '/usr/bin/python3';
const HAS_TORCH = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const MOE_ARCHITECTURES = ['gshard', 'switch', 'base', 'hash'];

/** A small base config: every architecture matched to 20k forward FLOPs per token. */
const TINY: ModelConfig = { vocabSize: 32, dModel: 16, layers: 2, seqLen: 8, heads: 2, experts: 2 };

interface PeerRow {
  case: string;
  status: string;
  reason?: string;
  parameters?: number;
  lossMaskFraction?: number;
  steps?: number;
  meanMs?: number;
}

function runPeer(args: string[]): { status: number | null; document: { results?: PeerRow[]; failures?: string[]; threads?: number } } {
  const run = spawnSync(PYTHON, [`${PEER_DIR}peer.py`, ...args], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  const last = run.stdout.trim().split('\n').pop() ?? '';
  return { status: run.status, document: last === '' ? {} : JSON.parse(last) };
}

// Without PyTorch these tests cannot run; the TypeScript side is tested without it in peer.test.ts.
describe.skipIf(!HAS_TORCH)(`peer.py with ${PYTHON}${HAS_TORCH ? '' : ' (skipped: no torch for it)'}`, () => {
  let specs: PeerModelSpec[] = [];

  beforeAll(async () => {
    await initBackend('cpu');
    const matches = matchCompute(20_000, TINY, { tolerance: 0.2 });
    specs = ARCHITECTURES.map((architecture) => {
      const { config, accounting } = matches[architecture];
      const model = createModel(architecture, config, { seed: 0 });
      const parameters = model.trainableVariables.reduce((sum, variable) => sum + variable.size, 0);
      model.dispose();
      return { architecture, config, batch: 2, parameters, forwardFlopsPerToken: accounting.forwardFlopsPerToken };
    });
  });

  it('passes its self-check', () => {
    const { status, document } = runPeer(['--self-check', '--threads', '1']);
    expect(document.failures).toEqual([]);
    expect(status).toBe(0);
  });

  it('times every model with moebench parameter counts', () => {
    const cases = specs.map((spec) => `train-step-${spec.architecture}`).join(',');
    const { status, document } = runPeer(['--seconds', '0', '--min-steps', '1', '--threads', '1', '--cases', cases, '--models', JSON.stringify(specs)]);
    expect(status).toBe(0);
    expect(document.threads).toBe(1);
    const moeModule = existsSync(`${PEER_DIR}moe_models.py`);
    for (const spec of specs) {
      const row = document.results!.find((result) => result.case === `train-step-${spec.architecture}`)!;
      if (!moeModule && MOE_ARCHITECTURES.includes(spec.architecture)) {
        expect(row.status, spec.architecture).toBe('skipped');
        expect(row.reason, spec.architecture).toContain('moe_models.py is not in benchmarks/peer');
        continue;
      }
      expect(row, spec.architecture).toMatchObject({ status: 'measured', parameters: spec.parameters, steps: 1 });
      expect(row, spec.architecture).not.toHaveProperty('lossMaskFraction');
      expect(row.meanMs, spec.architecture).toBeGreaterThan(0);
    }
  });

  it('times sMLP with partial prediction', () => {
    const { config, accounting } = matchCompute(20_000, { ...TINY, smlp: { smoe: { routing: 'partial-prediction' } } }, {
      architectures: ['smlp'],
      tolerance: 0.2,
    }).smlp;
    const model = createModel('smlp', config, { seed: 0 });
    const parameters = model.trainableVariables.reduce((sum, variable) => sum + variable.size, 0);
    model.dispose();
    const spec = { architecture: 'smlp', config, batch: 2, parameters, forwardFlopsPerToken: accounting.forwardFlopsPerToken };
    expect(parameters).toBeGreaterThan(specs.find((entry) => entry.architecture === 'smlp')!.parameters);
    const { status, document } = runPeer(['--seconds', '0', '--min-steps', '1', '--cases', 'train-step-smlp', '--models', JSON.stringify([spec])]);
    expect(status).toBe(0);
    // seqLen 8 and the default prefixFraction 0.2 give a router prefix of 1 position without loss.
    expect(document.results![0]).toMatchObject({ case: 'train-step-smlp', status: 'measured', parameters, lossMaskFraction: 7 / 8 });
  });

  it('fails a model whose parameter count differs', () => {
    const transformer = { ...specs[0], parameters: specs[0].parameters + 1 };
    const { status, document } = runPeer(['--seconds', '0', '--min-steps', '1', '--cases', 'train-step-transformer', '--models', JSON.stringify([transformer])]);
    expect(status).toBe(0);
    expect(document.results).toEqual([
      {
        case: 'train-step-transformer',
        status: 'failed',
        reason: `ValueError: the PyTorch model has ${specs[0].parameters} parameters, moebench's has ${transformer.parameters}`,
      },
    ]);
  });

  it('skips models whose module is missing or broken', () => {
    const directory = mkdtempSync(join(tmpdir(), 'moebench-peer-'));
    try {
      for (const file of ['peer.py', 'dense_models.py', 'assignment.py']) copyFileSync(`${PEER_DIR}${file}`, join(directory, file));
      const models = JSON.stringify(specs.filter((spec) => spec.architecture === 'transformer' || spec.architecture === 'switch'));
      const args = [join(directory, 'peer.py'), '--seconds', '0', '--min-steps', '1', '--cases', 'train-step-transformer,train-step-switch', '--models', models];
      const rows = (): PeerRow[] => JSON.parse(spawnSync(PYTHON, args, { encoding: 'utf8' }).stdout.trim().split('\n').pop()!).results;

      const missing = rows();
      expect(missing[0]).toMatchObject({ case: 'train-step-transformer', status: 'measured' });
      expect(missing[1]).toEqual({
        case: 'train-step-switch',
        status: 'skipped',
        reason: 'no PyTorch builder for switch: moe_models.py is not in benchmarks/peer',
      });

      writeFileSync(join(directory, 'moe_models.py'), 'raise RuntimeError("half written")\n');
      const broken = rows();
      expect(broken[0]).toMatchObject({ case: 'train-step-transformer', status: 'measured' });
      expect(broken[1].reason).toBe('no PyTorch builder for switch: moe_models.py did not import (RuntimeError: half written)');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('rejects a malformed model entry', () => {
    const run = spawnSync(PYTHON, [`${PEER_DIR}peer.py`, '--models', JSON.stringify([{ architecture: 'transformer' }])], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("--models[0] must have exactly the keys ['architecture', 'batch', 'config', 'forwardFlopsPerToken', 'parameters'], received ['architecture']");
  });

  it.each([
    [['--training', '{"learningRate": "x"}'], "--training: learningRate must be a finite number, received 'x'"],
    [['--training', '{"beta2": 1}'], '--training: beta2 must be >= 0 and < 1, received 1'],
    [['--training', '{"gradientClipNorm": 0}'], '--training: gradientClipNorm must be > 0, received 0'],
    [['--seconds', 'inf'], '--seconds must be a finite number >= 0'],
  ])('rejects %j before any work', (args, message) => {
    const run = spawnSync(PYTHON, [`${PEER_DIR}peer.py`, ...args], { encoding: 'utf8' });
    expect(run.stderr).toContain(message);
    expect(run.status).toBe(2);
  });
});

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '@moebench/results';
import { describe, expect, it } from 'vitest';
import { readReportData, writeReport, type ReportSummary } from '../src/index.js';
import { sampleModels } from './fixtures.js';

const manifest = {
  gitSha: '0123456789abcdef0123',
  gitDirty: false,
  versions: { node: '20.20.2', '@tensorflow/tfjs-core': '4.22.0' },
  backend: { backend: 'wasm', tfjsVersion: '4.22.0', wasm: { simd: true, threads: 1 }, host: { cpuModel: 'Test CPU', cpuCores: 2 } },
  seeds: { data: 7, init: 3 },
  data: { corpus: 'sotu', tokenizer: 'byte' },
  config: { suite: 'smoke' },
  configHash: 'hash',
};

/** Fills a store with the sample models through the results API: one older empty run, then `smoke-b`. */
function fillStore(): string {
  const storePath = join(mkdtempSync(join(tmpdir(), 'moebench-report-store-')), 'results.sqlite');
  const store = openStore(storePath);
  store.createRun({ id: 'smoke-a', suite: 'smoke', manifest });
  store.createRun({ id: 'smoke-b', suite: 'smoke', manifest });
  for (const run of sampleModels()) {
    const model = store.addModel('smoke-b', {
      name: run.name,
      architecture: run.architecture,
      config: { dModel: 32 },
      totalParameters: run.totalParameters,
      activeParametersPerToken: run.activeParametersPerToken,
      forwardFlopsPerToken: run.forwardFlopsPerToken,
    });
    for (const evaluation of run.evaluations) {
      store.recordEvaluation(model.id, {
        step: evaluation.step,
        tokensSeen: evaluation.tokens,
        trainingSeconds: evaluation.trainingSeconds,
        evalSeconds: 0.5,
        valLoss: evaluation.validationLoss,
        perplexity: evaluation.perplexity,
        bitsPerByte: evaluation.bitsPerByte!,
      });
    }
    for (let step = 1; step <= 60; step++) {
      store.recordStep(model.id, { step, loss: 3, lr: 1e-3, gradNorm: 1, tokensSeen: step * 1000, tokensPerSecond: 1000, trainingSeconds: step });
    }
    const steps = [...new Set(run.routing.map((point) => point.step))];
    for (const step of steps) {
      const layers = run.routing
        .filter((point) => point.step === step)
        .map((point) => ({
          layer: point.layer,
          stats: {
            tokensPerExpert: point.tokensPerExpert,
            keptPerExpert: point.tokensPerExpert,
            droppedFraction: point.droppedFraction,
            routerEntropy: null,
            maxOverMeanLoad: 1,
            idleExperts: point.idleExperts,
          },
        }));
      store.recordRouting(model.id, step, layers);
    }
    store.setModelStatus(model.id, 'done');
  }
  store.setRunStatus('smoke-b', 'done');
  store.close();
  return storePath;
}

describe('readReportData', () => {
  const storePath = fillStore();

  it('reads the latest run with its provenance and series', () => {
    const data = readReportData(storePath);
    expect(data.run).toMatchObject({
      runId: 'smoke-b',
      corpus: 'sotu, byte tokenizer',
      backend: 'wasm (SIMD, 1 thread)',
      hardware: 'Test CPU (2 cores)',
      gitSha: '0123456789abcdef0123',
      suite: 'smoke',
    });
    expect(data.models.map((run) => run.name)).toEqual(['transformer', 'gmlp', 'gshard', 'switch', 'base', 'hash', 'smlp']);
    const gshard = data.models[2];
    expect(gshard.seed).toBe(3);
    expect(gshard.choicesPerToken).toBe(2);
    expect(gshard.evaluations).toHaveLength(7);
    expect(gshard.steps).toHaveLength(60);
    expect(gshard.routing).toHaveLength(80);
    expect(gshard.routing[0]).toEqual({ step: 1, layer: 'block0.moe', tokensPerExpert: [128, 128, 128, 128], droppedFraction: 0, idleExperts: 0 });
  });

  it('names the runs it has when the run is missing', () => {
    expect(() => readReportData(storePath, 'quick-x')).toThrow('Run "quick-x" not found in');
    expect(() => readReportData(storePath, 'quick-x')).toThrow('Runs in the store: smoke-a, smoke-b.');
  });
});

describe('readReportData with seeds', () => {
  it('groups <name>-seed<n> models under one name', () => {
    const storePath = join(mkdtempSync(join(tmpdir(), 'moebench-report-seeds-')), 'results.sqlite');
    const store = openStore(storePath);
    store.createRun({ id: 'seeds', suite: 'quick', manifest: { ...manifest, seeds: { 'smlp-seed4': 4, 'smlp-seed5': 5 } } });
    for (const name of ['smlp-seed4', 'smlp-seed5']) {
      const config = name === 'smlp-seed4' ? { seed: 4 } : {};
      store.addModel('seeds', { name, architecture: 'smlp', config, totalParameters: 1, activeParametersPerToken: 1, forwardFlopsPerToken: 1 });
    }
    store.close();

    const data = readReportData(storePath, 'seeds');
    expect(data.models.map((run) => [run.name, run.seed])).toEqual([
      ['smlp', 4],
      ['smlp', 5],
    ]);
  });
});

describe('writeReport', () => {
  it('writes every output from a filled store', async () => {
    const storePath = fillStore();
    const outDir = join(mkdtempSync(join(tmpdir(), 'moebench-report-out-')), 'report');
    const { files } = await writeReport({ storePath, outDir });

    for (const name of ['report.md', 'report.html', 'summary.json', 'charts/perplexity-vs-time.png', 'charts/expert-load-smlp-seed3.svg']) {
      expect(files).toContain(join(outDir, name));
      expect(existsSync(join(outDir, name))).toBe(true);
    }
    const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as ReportSummary;
    expect(summary.run.runId).toBe('smoke-b');
    expect(summary.analysis.comparisons.map((comparison) => comparison.claim.verdict)).toHaveLength(6);
    // Throughput comes from the last stored step: 60 000 tokens in 60 s.
    expect(summary.analysis.models[0].tokensPerSecond!.mean).toBe(1000);
    expect(readFileSync(join(outDir, 'report.md'), 'utf8')).toContain('# moebench report: run smoke-b');
  });

  it('rejects a missing storePath before any work', async () => {
    await expect(writeReport({ storePath: '', outDir: 'x' })).rejects.toThrow('writeReport: storePath is ""');
  });
});

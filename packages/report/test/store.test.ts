import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type RunRecord } from '@moebench/results';
import { describe, expect, it } from 'vitest';
import { analyse, provenanceLines, readReportData, runContext, writeReport, type ReportSummary } from '../src/index.js';
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

  it('names the kernel set of a wasm run', () => {
    const base = { id: 'r', suite: 'quick', status: 'done', startedAt: '2026-12-04T00:00:00Z', finishedAt: null };
    const context = (wasm: Record<string, unknown>) =>
      runContext({ ...base, manifest: { backend: { backend: 'wasm', wasm: { simd: true, threads: 1, ...wasm } } } } as unknown as RunRecord);
    expect(context({ replacedKernels: [] }).kernels).toBe('stock wasm kernels');
    expect(context({ replacedKernels: [] }).backend).toBe('wasm (SIMD, 1 thread)');
    expect(context({ replacedKernels: ['BatchMatMul', '_FusedMatMul', 'Sum', 'GatherV2'], nativeKernels: { active: false, kernels: ['BatchMatMul', '_FusedMatMul'] } }).kernels).toBe(
      'kernels: moebench BatchMatMul, _FusedMatMul, Sum, GatherV2',
    );
    const native = context({
      replacedKernels: ['BatchMatMul', '_FusedMatMul', 'Sum', 'GatherV2'],
      nativeKernels: { active: true, threads: 2, kernels: ['BatchMatMul', '_FusedMatMul', 'MoebenchGelu'] },
    });
    expect(native.kernels).toBe('kernels: native (OpenBLAS, 2 threads) BatchMatMul, _FusedMatMul, MoebenchGelu; moebench Sum, GatherV2');
    const oneThread = context({ replacedKernels: ['BatchMatMul', 'Sum'], nativeKernels: { active: true, threads: 1, kernels: ['BatchMatMul'] } });
    expect(oneThread.kernels).toBe('kernels: native (OpenBLAS, 1 thread) BatchMatMul; moebench Sum');
    expect(provenanceLines(native)[2]).toBe(native.kernels);
    expect(context({}).kernels).toBeUndefined();
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

describe('readReportData on unusual stores', () => {
  const model = { architecture: 'smlp', config: {}, totalParameters: 10, activeParametersPerToken: 10, forwardFlopsPerToken: 20 };
  const newStore = (): { store: ReturnType<typeof openStore>; storePath: string } => {
    const storePath = join(mkdtempSync(join(tmpdir(), 'moebench-report-edge-')), 'results.sqlite');
    return { store: openStore(storePath), storePath };
  };
  const evaluation = (step: number, perplexity: number) => ({
    step,
    tokensSeen: step * 100,
    trainingSeconds: step,
    evalSeconds: 0.1,
    valLoss: Math.log(perplexity),
    perplexity,
    bitsPerByte: Math.log2(perplexity),
  });

  it('rejects a store without runs', () => {
    const { store, storePath } = newStore();
    store.close();
    expect(() => readReportData(storePath)).toThrow(`The run store ${storePath} contains no run; run a suite first.`);
  });

  it("keeps a diverged sMLP's finite evaluations", () => {
    const { store, storePath } = newStore();
    store.createRun({ id: 'div', suite: 'smoke', manifest });
    const smlp = store.addModel('div', { ...model, name: 'smlp' });
    store.recordEvaluation(smlp.id, evaluation(0, 256));
    store.recordEvaluation(smlp.id, evaluation(5, 120));
    store.recordEvaluation(smlp.id, { ...evaluation(6, 1), valLoss: Number.NaN, perplexity: Number.NaN, bitsPerByte: Number.NaN });
    store.setModelStatus(smlp.id, 'diverged', { divergedStep: 6 });
    const transformer = store.addModel('div', { ...model, name: 'transformer', architecture: 'transformer' });
    for (const [step, perplexity] of [[0, 256], [5, 100], [10, 50]]) store.recordEvaluation(transformer.id, evaluation(step, perplexity));
    store.setModelStatus(transformer.id, 'done');
    store.close();

    const data = readReportData(storePath);
    expect(data.models[0].evaluations.map((point) => point.perplexity)).toEqual([256, 120]);
    expect(data.models[0].statusReason).toBe('loss not finite at step 6; 1 evaluation(s) without a finite perplexity left out');
    const analysis = analyse(data);
    expect(analysis.comparisons[0].claim.verdict).toBe('not reproduced');
    expect(analysis.comparisons[0].claim.reason).toMatch(/^sMLP diverged \(seed 3: loss not finite at step 6;/);
    expect(analysis.equalTimeSeconds).toBe(10);
  });

  it('describes router and loss divergences', () => {
    const { store, storePath } = newStore();
    store.createRun({ id: 'router', suite: 'smoke', manifest });
    const smlp = store.addModel('router', { ...model, name: 'smlp' });
    store.recordEvaluation(smlp.id, evaluation(0, 256));
    store.setModelStatus(smlp.id, 'diverged', { divergedStep: 5, reason: 'balancedAssignment: affinity of token 0 for expert 0 is -Infinity' });
    const gmlp = store.addModel('router', { ...model, name: 'gmlp', architecture: 'gmlp' });
    store.recordEvaluation(gmlp.id, evaluation(0, 256));
    store.setModelStatus(gmlp.id, 'diverged', { divergedStep: 7, reason: 'loss NaN, gradient norm NaN' });
    store.close();

    const [smlpRun, gmlpRun] = readReportData(storePath).models;
    expect(smlpRun.statusReason).toBe('a non-finite value at step 5 (balancedAssignment: affinity of token 0 for expert 0 is -Infinity)');
    expect(gmlpRun.statusReason).toBe('loss not finite at step 7 (loss NaN, gradient norm NaN)');
  });

  it('reports a failed model with its error', async () => {
    const { store, storePath } = newStore();
    store.createRun({ id: 'fail', suite: 'smoke', manifest });
    const smlp = store.addModel('fail', { ...model, name: 'smlp' });
    for (const [step, perplexity] of [[0, 256], [4, 30]]) store.recordEvaluation(smlp.id, evaluation(step, perplexity));
    for (let step = 1; step <= 6; step++) {
      store.recordStep(smlp.id, { step, loss: 4, lr: 1e-3, gradNorm: 1, tokensSeen: step * 100, tokensPerSecond: 100, trainingSeconds: step });
    }
    store.setModelStatus(smlp.id, 'failed', { reason: 'RuntimeError: Aborted(OOM)', failedAfterStep: 6 });
    const transformer = store.addModel('fail', { ...model, name: 'transformer', architecture: 'transformer' });
    for (const [step, perplexity] of [[0, 256], [5, 100], [10, 50]]) store.recordEvaluation(transformer.id, evaluation(step, perplexity));
    store.setModelStatus(transformer.id, 'done');
    store.setRunStatus('fail', 'done');
    store.close();

    const data = readReportData(storePath);
    expect(data.models[0]).toMatchObject({ name: 'smlp', status: 'failed', statusReason: 'RuntimeError: Aborted(OOM)' });
    const analysis = analyse(data);
    // sMLP was at perplexity 30 by step 4, below the transformer's 50, but a failed run reaches no target.
    expect(analysis.comparisons[0].speedups.time.reachedSeeds).toBe(0);
    expect(analysis.comparisons[0].claim.verdict).toBe('inconclusive');

    const outDir = join(mkdtempSync(join(tmpdir(), 'moebench-report-out-')), 'report');
    await writeReport({ storePath, outDir });
    const markdown = readFileSync(join(outDir, 'report.md'), 'utf8');
    expect(markdown).toContain(
      '- sMLP (seed 3) failed after step 6: RuntimeError: Aborted(OOM). It stopped before the end of its budget, so no speedup is measured with it.',
    );
    expect(markdown).toContain('sMLP (seed 3) failed: its figures do not cover its whole budget.');
    expect(markdown).toMatch(/\| sMLP \|[^\n]*\| failed \|/);
  });

  it('reports one model without evaluations', async () => {
    const { store, storePath } = newStore();
    store.createRun({ id: 'bare', suite: 'smoke', manifest });
    const smlp = store.addModel('bare', { ...model, name: 'smlp' });
    store.recordStep(smlp.id, { step: 1, loss: 5, lr: 1e-3, gradNorm: 1, tokensSeen: 100, tokensPerSecond: 100, trainingSeconds: 1 });
    store.setModelStatus(smlp.id, 'interrupted');
    store.close();

    const outDir = join(mkdtempSync(join(tmpdir(), 'moebench-report-out-')), 'report');
    const { files } = await writeReport({ storePath, outDir });
    // No curve to draw, but the throughput of the one step is still reported.
    expect(files.map((file) => file.slice(outDir.length + 1))).toEqual([
      'report.md',
      'report.html',
      'summary.json',
      'charts/tokens-per-second.svg',
      'charts/tokens-per-second.png',
    ]);
    const markdown = readFileSync(join(outDir, 'report.md'), 'utf8');
    expect(markdown).toContain('- sMLP (seed 3) is interrupted.');
    expect(markdown).toContain('- sMLP (seed 3) has no evaluation and is left out of the comparisons.');
    expect(markdown).toContain('No speedup can be measured: the run has no model besides sMLP.');
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

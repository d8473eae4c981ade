import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type EvaluationInput } from '@moebench/results';
import { describe, expect, it } from 'vitest';
import { analyse, buildDocument, readReportData, renderMarkdown, unscoredPositionsOf, writeReport, type ReportData } from '../src/index.js';
import { modelRun, testRun } from './fixtures.js';

const run = testRun;

// sMLP crosses Switch's final perplexity 20 at 10 s, Switch reached it at 30 s: a 3x speedup.
const smlp = modelRun('smlp', [[0, 100], [10, 20]]);
const runningSwitch = modelRun('switch', [[0, 100], [30, 20]], { status: 'running' });

function markdownOf(data: ReportData): string {
  return renderMarkdown(buildDocument(analyse(data), data.run, []), 'charts');
}

describe('a model marked running', () => {
  it('reads as stopped without finishing when no process trains the run', () => {
    const analysis = analyse({ run: { ...run, status: 'running', processAlive: false }, models: [smlp, runningSwitch] });
    expect(analysis.notes).toContain(
      'Switch (seed 1) stopped without finishing: the store still marks it running, but no process is training the run ' +
        '(it was killed, or its machine stopped). Its figures end at its last evaluation; resume the run to finish it.',
    );
    expect(analysis.notes.join('\n')).not.toContain('is running');
    expect(analysis.comparisons[0].claim).toEqual({
      verdict: 'inconclusive',
      reason: 'Switch (seed 1) stopped without finishing: its figures do not cover its whole budget.',
      reachesPaperSpeedup: 'n/a',
    });
    expect(analysis.comparisons[0].speedups.time.speedup!.mean).toBe(3);
  });

  it('reads as stopped when the run itself has ended', () => {
    const analysis = analyse({ run: { ...run, status: 'interrupted' }, models: [smlp, runningSwitch] });
    expect(analysis.notes).toContain(
      'Switch (seed 1) stopped without finishing: the run is interrupted, but this model was never marked finished. ' +
        'Its figures end at its last evaluation; resume the run to finish it.',
    );
  });

  it('reads as still training when a process trains the run', () => {
    const analysis = analyse({ run: { ...run, status: 'running', processAlive: true }, models: [smlp, runningSwitch] });
    expect(analysis.notes).toContain('Switch (seed 1) is still training: its figures are those recorded so far.');
    expect(analysis.comparisons[0].claim.reason).toBe('Switch (seed 1) is still training: its figures do not cover its whole budget.');
  });

  it('says the store cannot tell without a liveness check', () => {
    const analysis = analyse({ run: { ...run, status: 'running' }, models: [smlp, runningSwitch] });
    expect(analysis.notes).toContain(
      'Switch (seed 1) is marked running in the store: either a process is still training it, or the process stopped ' +
        'without finishing (for example, it was killed). The store cannot tell which; its figures end at its last evaluation.',
    );
  });

  it('shows the last value of a stopped run in the model table', () => {
    const markdown = markdownOf({ run: { ...run, status: 'running', processAlive: false }, models: [smlp, runningSwitch] });
    expect(markdown).toMatch(/\| Switch \|[^\n]*\| 20\.00 \(running: value so far, at step 30\) \|/);
  });
});

describe('planned models that have not trained', () => {
  const planned = [
    { name: 'transformer', architecture: 'transformer', seed: 0 },
    { name: 'switch', architecture: 'switch', seed: 0 },
    { name: 'smlp', architecture: 'smlp', seed: 0 },
  ];
  const transformer = modelRun('transformer', [[0, 100], [10, 40]], { seed: 0, status: 'interrupted' });

  it('says sMLP has not trained yet instead of missing', () => {
    const data: ReportData = { run: { ...run, status: 'interrupted' }, models: [transformer], planned };
    const analysis = analyse(data);
    expect(analysis.subject).toBeNull();
    expect(analysis.untrained).toEqual(planned.slice(1));
    expect(analysis.notes).toContain(
      'Switch (seed 0) and sMLP (seed 0) have not trained yet: the run stopped before they started. Resume the run to train them.',
    );
    expect(analysis.notes).toContain('sMLP has not trained yet, so there are no speedups to report.');
    expect(analysis.notes.join('\n')).not.toContain('no sMLP model');

    const markdown = markdownOf(data);
    expect(markdown).toContain('No speedup can be measured yet: sMLP has not trained in this run.');
    expect(markdown).not.toContain('the run has no sMLP model');
  });

  it('says a live run has not reached them', () => {
    const analysis = analyse({ run: { ...run, status: 'running', processAlive: true }, models: [transformer], planned });
    expect(analysis.notes).toContain('Switch (seed 0) and sMLP (seed 0) have not trained yet: the run has not reached them.');
  });

  it('names the sMLP seeds that have not trained for a baseline', () => {
    const seeds = [0, 1];
    const data: ReportData = {
      run: { ...run, status: 'interrupted' },
      models: [
        modelRun('smlp', [[0, 100], [10, 20]], { seed: 0 }),
        ...seeds.map((seed) => modelRun('switch', [[0, 100], [30, 20]], { seed })),
      ],
      planned: seeds.flatMap((seed) => [
        { name: 'switch', architecture: 'switch', seed },
        { name: 'smlp', architecture: 'smlp', seed },
      ]),
    };
    const analysis = analyse(data);
    expect(analysis.notes).toContain('sMLP (seed 1) has not trained yet: the run stopped before it started. Resume the run to train it.');
    expect(analysis.notes).toContain('Switch seed 1 is not compared: sMLP has not trained at that seed yet.');
    expect(analysis.comparisons[0].pairedSeeds).toEqual([0]);
  });

  it('keeps the no-sMLP note for a run that planned none', () => {
    const analysis = analyse({ run, models: [transformer], planned: planned.slice(0, 1) });
    expect(analysis.untrained).toEqual([]);
    expect(analysis.notes).toContain('The run has no sMLP model, so there are no speedups to report.');
  });
});

describe('unscoredPositionsOf', () => {
  it('counts the router prefix of partial-prediction routing', () => {
    // max(1, floor(0.2 x 64)) = 12 with the default prefix fraction; floor(0.3 x 10) = 3.
    expect(unscoredPositionsOf('smlp', { seqLen: 64, smlp: { smoe: { routing: 'partial-prediction' } } })).toEqual({
      skipped: 12,
      seqLen: 64,
      cause: 'partial-prediction routing',
    });
    expect(unscoredPositionsOf('smlp', { seqLen: 10, smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 0.3 } } })!.skipped).toBe(3);
    expect(unscoredPositionsOf('smlp', { seqLen: 16, smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 0.01 } } })!.skipped).toBe(1);
  });

  it('finds none for models scored on every position', () => {
    expect(unscoredPositionsOf('smlp', { seqLen: 64, smlp: { smoe: { routing: 'deterministic' } } })).toBeUndefined();
    expect(unscoredPositionsOf('smlp', { seqLen: 64 })).toBeUndefined();
    expect(unscoredPositionsOf('transformer', { seqLen: 64, smlp: { smoe: { routing: 'partial-prediction' } } })).toBeUndefined();
  });
});

describe('run state read from a store', () => {
  const model = { config: { seqLen: 64 }, totalParameters: 1000, activeParametersPerToken: 500, forwardFlopsPerToken: 1000 };
  const evaluation = (step: number, perplexity: number): EvaluationInput => ({
    step,
    tokensSeen: step * 100,
    trainingSeconds: step,
    evalSeconds: 0.1,
    valLoss: Math.log(perplexity),
    perplexity,
    bitsPerByte: Math.log2(perplexity),
  });

  /** A run killed while it trained the transformer: run and model still `running`, sMLP never started. */
  function killedRun(): string {
    const storePath = join(mkdtempSync(join(tmpdir(), 'moebench-report-state-')), 'store.sqlite');
    const store = openStore(storePath);
    const models = [
      { name: 'transformer', architecture: 'transformer', seed: 0, config: {} },
      { name: 'smlp', architecture: 'smlp', seed: 0, config: {} },
    ];
    const manifest = { gitSha: null, gitDirty: null, versions: {}, backend: {}, seeds: { transformer: 0, smlp: 0 }, data: {}, config: { models }, configHash: 'h' };
    store.createRun({ id: 'killed', suite: 'smoke', manifest });
    const transformer = store.addModel('killed', { ...model, name: 'transformer', architecture: 'transformer' });
    for (const [step, perplexity] of [[0, 256], [5, 100]]) store.recordEvaluation(transformer.id, evaluation(step, perplexity));
    store.close();
    return storePath;
  }

  it('reads the run status and the planned models', () => {
    const data = readReportData(killedRun());
    expect(data.run.status).toBe('running');
    expect(data.run.processAlive).toBeUndefined();
    expect(data.planned).toEqual([
      { name: 'transformer', architecture: 'transformer', seed: 0 },
      { name: 'smlp', architecture: 'smlp', seed: 0 },
    ]);
    expect(data.models.map((entry) => [entry.name, entry.status])).toEqual([['transformer', 'running']]);
  });

  it('writes a killed run as stopped without finishing', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'moebench-report-out-')), 'report');
    await writeReport({ storePath: killedRun(), outDir, processAlive: false });
    const markdown = readFileSync(join(outDir, 'report.md'), 'utf8');
    expect(markdown).toContain('- Transformer (seed 0) stopped without finishing: the store still marks it running');
    expect(markdown).toContain('- sMLP (seed 0) has not trained yet: the run stopped before it started. Resume the run to train it.');
    expect(markdown).toContain('No speedup can be measured yet: sMLP has not trained in this run.');
    expect(markdown).not.toContain('is running');
  });

  it('rejects a processAlive that is not a boolean', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'moebench-report-out-')), 'report');
    const options = { storePath: killedRun(), outDir, processAlive: 'no' as unknown as boolean };
    await expect(writeReport(options)).rejects.toThrow('writeReport: processAlive is "no"; pass true, false, or leave it out when unknown.');
  });

  it('reads the positions a partial-prediction sMLP skips', () => {
    const storePath = join(mkdtempSync(join(tmpdir(), 'moebench-report-state-')), 'store.sqlite');
    const store = openStore(storePath);
    const manifest = { gitSha: null, gitDirty: null, versions: {}, backend: {}, seeds: {}, data: {}, config: {}, configHash: 'h' };
    store.createRun({ id: 'pp', suite: 'smoke', manifest });
    const config = { seqLen: 64, smlp: { smoe: { routing: 'partial-prediction' } } };
    const added = store.addModel('pp', { ...model, config, name: 'smlp', architecture: 'smlp' });
    store.recordEvaluation(added.id, evaluation(0, 256));
    store.close();

    const data = readReportData(storePath);
    expect(data.planned).toBeUndefined();
    expect(data.models[0].unscoredPositions).toEqual({ skipped: 12, seqLen: 64, cause: 'partial-prediction routing' });
  });
});

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportRows, exportRun, exportTable, openStore, toCsv, toJsonLines } from '../src/index.js';
import { SAMPLE_MODEL, sampleManifest, scratchDir } from './helpers.js';

const dir = scratchDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function filledStore() {
  const store = openStore(join(dir, `store-${Math.floor(performance.now() * 1000)}.sqlite`));
  for (const runId of ['a', 'b']) {
    store.createRun({ id: runId, suite: 'smoke', manifest: sampleManifest({ run: runId }) });
    const model = store.addModel(runId, SAMPLE_MODEL);
    store.recordStep(model.id, { step: 1, loss: 2.5, lr: 0.001, gradNorm: 0.75, tokensSeen: 256, tokensPerSecond: 1000, trainingSeconds: 0.5 });
    store.recordStep(model.id, { step: 2, loss: Number.NaN, lr: 0.002, gradNorm: 1, tokensSeen: 512, tokensPerSecond: 1000, trainingSeconds: 1 });
    store.recordEvaluation(model.id, { step: 2, tokensSeen: 512, trainingSeconds: 1, evalSeconds: 0.1, valLoss: 2, perplexity: Math.exp(2), bitsPerByte: 2 / Math.LN2 });
    store.recordRouting(model.id, 2, [
      { layer: 'moe', stats: { tokensPerExpert: [3, 1], keptPerExpert: [2, 1], droppedFraction: 0.25, routerEntropy: 0.5, maxOverMeanLoad: 1.5, idleExperts: 0, extra: { note: 1 } } },
    ]);
    store.recordCheckpoint(model.id, { step: 2, path: `ckpt/${runId}`, state: { position: 2 } });
  }
  return store;
}

describe('toCsv', () => {
  it('quotes commas, quotes and line breaks and leaves null empty', () => {
    const csv = toCsv([
      { name: 'plain', note: 'a, b', quote: 'say "hi"', lines: 'one\ntwo', missing: null, value: 1.5 },
    ]);
    expect(csv).toBe('name,note,quote,lines,missing,value\r\nplain,"a, b","say ""hi""","one\ntwo",,1.5\r\n');
  });
});

describe('exportTable on an empty table', () => {
  it('still writes the header line', () => {
    const store = openStore(join(dir, 'empty-export.sqlite'));
    store.createRun({ id: 'empty', suite: 'smoke', manifest: sampleManifest() });
    expect(exportTable(store, 'steps', 'csv', 'empty')).toBe(
      'run_id,model,model_id,step,loss,aux_loss,lr,grad_norm,tokens_seen,tokens_per_second,training_seconds,recorded_at\r\n',
    );
    expect(exportTable(store, 'routing', 'jsonl', 'empty')).toBe('');
    store.close();
  });
});

describe('toJsonLines', () => {
  it('parses JSON columns and writes one object per line', () => {
    const text = toJsonLines([{ step: 1, extra: '{"x":2}' }, { step: 2, extra: '{}' }]);
    expect(text).toBe('{"step":1,"extra":{"x":2}}\n{"step":2,"extra":{}}\n');
  });
});

describe('exports', () => {
  it('filters per-model tables by run and names the model', () => {
    const store = filledStore();
    const rows = exportRows(store, 'steps', 'b');
    expect(rows.map((row) => [row.run_id, row.model, row.step])).toEqual([['b', 'switch', 1], ['b', 'switch', 2]]);
    expect(rows[1].loss).toBeNull();
    expect(exportRows(store, 'steps').length).toBe(4);
    store.close();
  });

  it('writes steps as CSV with a header and one line per step', () => {
    const store = filledStore();
    const lines = exportTable(store, 'steps', 'csv', 'a').trimEnd().split('\r\n');
    expect(lines[0]).toBe('run_id,model,model_id,step,loss,aux_loss,lr,grad_norm,tokens_seen,tokens_per_second,training_seconds,recorded_at');
    expect(lines[1]).toMatch(/^a,switch,1,1,2\.5,0,0\.001,0\.75,256,1000,0\.5,\d{4}-/);
    expect(lines[2]).toMatch(/^a,switch,1,2,,0,0\.002,1,512,/);
    expect(lines.length).toBe(3);
    store.close();
  });

  it('writes routing as JSON lines with parsed expert counts', () => {
    const store = filledStore();
    const [row] = exportTable(store, 'routing', 'jsonl', 'a').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(row).toMatchObject({ run_id: 'a', model: 'switch', step: 2, layer: 'moe', tokens_per_expert: [3, 1], kept_per_expert: [2, 1], extra: { note: 1 } });
    store.close();
  });

  it('exports every table of a run to a folder', () => {
    const store = filledStore();
    const out = join(dir, 'export-a');
    const paths = exportRun(store, 'a', out, 'jsonl');
    expect(paths.map((path) => path.slice(out.length + 1))).toEqual([
      'runs.jsonl',
      'models.jsonl',
      'steps.jsonl',
      'evaluations.jsonl',
      'routing.jsonl',
      'checkpoints.jsonl',
    ]);
    const runs = readFileSync(join(out, 'runs.jsonl'), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(runs.length).toBe(1);
    expect(runs[0].manifest.config).toEqual({ run: 'a' });
    const evaluations = readFileSync(join(out, 'evaluations.jsonl'), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(evaluations[0]).toMatchObject({ step: 2, val_loss: 2, perplexity: Math.exp(2) });
    store.close();
  });

  it('exports from a store opened read-only', () => {
    const store = filledStore();
    const reader = openStore(store.path, { readonly: true });
    expect(exportTable(reader, 'models', 'csv', 'a').split('\r\n')[1]).toMatch(/^1,a,switch,switch,/);
    reader.close();
    store.close();
  });

  it('rejects an unknown table, format or run', () => {
    const store = filledStore();
    expect(() => exportTable(store, 'losses' as 'steps', 'csv')).toThrow('table: is not an exportable table (received "losses"). Allowed: one of runs, models, steps, evaluations, routing, checkpoints.');
    expect(() => exportTable(store, 'steps', 'xlsx' as 'csv')).toThrow('format: is not an export format (received "xlsx"). Allowed: one of csv, jsonl.');
    expect(() => exportRun(store, 'zzz', join(dir, 'x'))).toThrow(/^runId: is not a run in this store/);
    store.close();
  });

  it('checks folder and format first', () => {
    const store = filledStore();
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'text');
    expect(() => exportRun(store, 'a', file)).toThrow(`dir: is a file, not a folder (received ${JSON.stringify(file)})`);
    const out = join(dir, 'never-written');
    expect(() => exportRun(store, 'a', out, 'xlsx' as 'csv')).toThrow(/^format: is not an export format/);
    expect(existsSync(out)).toBe(false);
    store.close();
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(3);
  });
});

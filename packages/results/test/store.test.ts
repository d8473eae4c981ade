import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultsError, SCHEMA_VERSION, canonicalJson, hashConfig, openStore } from '../src/index.js';
import { SAMPLE_MODEL, sampleManifest, scratchDir } from './helpers.js';

const dir = scratchDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => join(dir, `store-${counter++}`, 'results.sqlite');

const routingStats = (tokens: number[], kept: number[]) => ({
  tokensPerExpert: tokens,
  keptPerExpert: kept,
  droppedFraction: 1 - kept.reduce((a, b) => a + b, 0) / tokens.reduce((a, b) => a + b, 0),
  routerEntropy: 1.2,
  maxOverMeanLoad: Math.max(...tokens) / (tokens.reduce((a, b) => a + b, 0) / tokens.length),
  idleExperts: tokens.filter((count) => count === 0).length,
  extra: { secondOverCapacity: 0.25 },
});

describe('run store round trip', () => {
  it('stores a run with its manifest and status', () => {
    const store = openStore(freshPath());
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    const manifest = sampleManifest();
    const run = store.createRun({ id: 'run-1', suite: 'smoke', manifest });
    expect(run.status).toBe('running');
    expect(run.finishedAt).toBeNull();
    expect(run.manifest).toEqual(manifest);
    expect(run.configHash).toBe(manifest.configHash);

    store.setRunStatus('run-1', 'interrupted', 'SIGINT');
    const ended = store.getRun('run-1')!;
    expect(ended.status).toBe('interrupted');
    expect(ended.error).toBe('SIGINT');
    expect(ended.finishedAt).not.toBeNull();
    expect(store.listRuns().map((r) => r.id)).toEqual(['run-1']);
    expect(store.latestRun('smoke')?.id).toBe('run-1');
    expect(store.latestRun('quick')).toBeUndefined();
    store.close();
  });

  it('names a run after its suite and time when no id is given', () => {
    const store = openStore(freshPath());
    const first = store.createRun({ suite: 'quick', manifest: sampleManifest() });
    const second = store.createRun({ suite: 'quick', manifest: sampleManifest() });
    expect(first.id).toMatch(/^quick-\d{8}-\d{6}$/);
    expect(second.id).not.toBe(first.id);
    store.close();
  });

  it('stores models with accounting and every status', () => {
    const store = openStore(freshPath());
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    const model = store.addModel('r', SAMPLE_MODEL);
    expect(model).toMatchObject({ ...SAMPLE_MODEL, runId: 'r', status: 'running', reason: null, divergedStep: null, failedAfterStep: null });

    const hash = store.addModel('r', { ...SAMPLE_MODEL, name: 'hash', architecture: 'hash' });
    store.setModelStatus(hash.id, 'skipped', { reason: 'needs unigram counts' });
    store.setModelStatus(model.id, 'diverged', { divergedStep: 17 });
    const [first, second] = store.listModels('r');
    expect(first).toMatchObject({ name: 'switch', status: 'diverged', divergedStep: 17 });
    expect(second).toMatchObject({ name: 'hash', status: 'skipped', reason: 'needs unigram counts' });
    expect(second.finishedAt).not.toBeNull();
    expect(store.getModel('r', 'hash')?.id).toBe(hash.id);
    store.close();
  });

  it('stores a failed model with its error and step', () => {
    const store = openStore(freshPath());
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    const failed = store.addModel('r', SAMPLE_MODEL);
    const early = store.addModel('r', { ...SAMPLE_MODEL, name: 'gshard', architecture: 'gshard' });
    store.setModelStatus(failed.id, 'failed', { reason: 'RuntimeError: Aborted(OOM)', failedAfterStep: 12 });
    store.setModelStatus(early.id, 'failed', { reason: 'kernel error' });

    const stored = store.getModelById(failed.id)!;
    expect(stored.status).toBe('failed');
    expect(stored.reason).toBe('RuntimeError: Aborted(OOM)');
    expect(stored.failedAfterStep).toBe(12);
    expect(stored.divergedStep).toBeNull();
    expect(stored.finishedAt).not.toBeNull();
    expect(store.getModelById(early.id)).toMatchObject({ status: 'failed', reason: 'kernel error', failedAfterStep: null });
    store.close();
  });

  it('clears the failure when a failed model is rewound', () => {
    const store = openStore(freshPath());
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    const { id } = store.addModel('r', SAMPLE_MODEL);
    for (let step = 1; step <= 3; step++) {
      store.recordStep(id, { step, loss: 1, lr: 1, gradNorm: 1, tokensSeen: step, tokensPerSecond: 1, trainingSeconds: step });
    }
    store.setModelStatus(id, 'failed', { reason: 'out of memory', failedAfterStep: 3 });

    store.rewindModel(id, 2);
    const model = store.getModelById(id)!;
    expect(model.status).toBe('running');
    expect(model.reason).toBeNull();
    expect(model.failedAfterStep).toBeNull();
    expect(model.finishedAt).toBeNull();
    expect(store.steps(id).map((s) => s.step)).toEqual([1, 2]);
    store.close();
  });

  it('stores steps, evaluations, routing and checkpoints in order', () => {
    const store = openStore(freshPath());
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    const { id } = store.addModel('r', SAMPLE_MODEL);
    for (const step of [2, 1, 3]) {
      store.recordStep(id, { step, loss: 5 - step, auxLoss: 0.01, lr: 1e-3 * step, gradNorm: 0.5, tokensSeen: 512 * step, tokensPerSecond: 2000, trainingSeconds: 0.25 * step });
    }
    store.recordStep(id, { step: 4, loss: Number.NaN, lr: 4e-3, gradNorm: Number.POSITIVE_INFINITY, tokensSeen: 2048, tokensPerSecond: 2000, trainingSeconds: 1 });
    store.recordEvaluation(id, { step: 3, tokensSeen: 1536, trainingSeconds: 0.75, evalSeconds: 0.2, valLoss: 2, perplexity: Math.exp(2), bitsPerByte: 2 / Math.LN2 });
    store.recordRouting(id, 3, [
      { layer: 'blocks.1.moe', stats: routingStats([3, 1, 0, 4], [2, 1, 0, 2]) },
      { layer: 'blocks.3.moe', stats: { ...routingStats([2, 2, 2, 2], [2, 2, 2, 2]), routerEntropy: null, extra: undefined } },
    ]);
    store.recordCheckpoint(id, { step: 3, path: '/tmp/ckpt-3', state: { sampler: { seed: 1, position: 3 } } });

    const steps = store.steps(id);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(steps[0]).toMatchObject({ loss: 4, auxLoss: 0.01, lr: 1e-3, gradNorm: 0.5, tokensSeen: 512, tokensPerSecond: 2000, trainingSeconds: 0.25 });
    expect(steps[3].loss).toBeNull();
    expect(steps[3].auxLoss).toBe(0);
    expect(steps[3].gradNorm).toBe(Number.POSITIVE_INFINITY);
    expect(store.lastStep(id)?.step).toBe(4);

    expect(store.evaluations(id)).toEqual([
      expect.objectContaining({ step: 3, tokensSeen: 1536, trainingSeconds: 0.75, evalSeconds: 0.2, valLoss: 2, perplexity: Math.exp(2), bitsPerByte: 2 / Math.LN2 }),
    ]);

    const routing = store.routing(id);
    expect(routing.map((r) => [r.step, r.layerIndex, r.layer])).toEqual([[3, 0, 'blocks.1.moe'], [3, 1, 'blocks.3.moe']]);
    expect(routing[0]).toMatchObject({ tokensPerExpert: [3, 1, 0, 4], keptPerExpert: [2, 1, 0, 2], droppedFraction: 0.375, idleExperts: 1, maxOverMeanLoad: 2, routerEntropy: 1.2, extra: { secondOverCapacity: 0.25 } });
    expect(routing[1]).toMatchObject({ routerEntropy: null, extra: {} });

    expect(store.latestCheckpoint(id)).toMatchObject({ step: 3, path: '/tmp/ckpt-3', state: { sampler: { seed: 1, position: 3 } } });
    store.close();
  });

  it('rewinds a model to its checkpoint for a resume', () => {
    const store = openStore(freshPath());
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    const { id } = store.addModel('r', SAMPLE_MODEL);
    for (let step = 1; step <= 6; step++) {
      store.recordStep(id, { step, loss: 1, lr: 1, gradNorm: 1, tokensSeen: step, tokensPerSecond: 1, trainingSeconds: step });
      store.recordRouting(id, step, [{ layer: 'moe', stats: routingStats([1, 1], [1, 1]) }]);
    }
    store.recordEvaluation(id, { step: 2, tokensSeen: 2, trainingSeconds: 2, evalSeconds: 1, valLoss: 1, perplexity: Math.E, bitsPerByte: 1 / Math.LN2 });
    store.recordEvaluation(id, { step: 5, tokensSeen: 5, trainingSeconds: 5, evalSeconds: 1, valLoss: 1, perplexity: Math.E, bitsPerByte: 1 / Math.LN2 });
    store.recordCheckpoint(id, { step: 4, path: 'ckpt-4' });
    store.setModelStatus(id, 'interrupted');

    store.rewindModel(id, 4);
    expect(store.steps(id).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(store.routing(id).map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(store.evaluations(id).map((e) => e.step)).toEqual([2]);
    expect(store.getModelById(id)?.status).toBe('running');
    store.recordStep(id, { step: 5, loss: 1, lr: 1, gradNorm: 1, tokensSeen: 5, tokensPerSecond: 1, trainingSeconds: 5 });
    expect(store.steps(id).length).toBe(5);
    store.close();
  });

  it('lets a reader see writes while the writer is open', () => {
    const path = freshPath();
    const writer = openStore(path);
    writer.createRun({ id: 'live', suite: 'smoke', manifest: sampleManifest() });
    const { id } = writer.addModel('live', SAMPLE_MODEL);
    const reader = openStore(path, { readonly: true });
    expect(reader.steps(id)).toEqual([]);
    writer.recordStep(id, { step: 1, loss: 1, lr: 1, gradNorm: 1, tokensSeen: 1, tokensPerSecond: 1, trainingSeconds: 1 });
    expect(reader.steps(id).map((s) => s.step)).toEqual([1]);
    reader.close();
    writer.close();
  });

  it('reopens a closed store with its data', () => {
    const path = freshPath();
    const store = openStore(path);
    store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
    store.close();
    const reader = openStore(path, { readonly: true });
    expect(reader.getRun('r')?.suite).toBe('smoke');
    expect(reader.readonly).toBe(true);
    reader.close();
  });
});

describe('run store input errors', () => {
  const store = openStore(freshPath());
  store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() });
  const model = store.addModel('r', SAMPLE_MODEL);
  const step = { step: 1, loss: 1, lr: 1, gradNorm: 1, tokensSeen: 1, tokensPerSecond: 1, trainingSeconds: 1 };

  it('rejects a step recorded twice', () => {
    store.recordStep(model.id, step);
    expect(() => store.recordStep(model.id, step)).toThrow(`step: is already recorded for model ${model.id} (received 1)`);
  });

  it('rejects unknown statuses and lists the valid ones', () => {
    expect(() => store.setRunStatus('r', 'paused' as 'done')).toThrow('status: is not a valid status (received "paused"). Allowed: one of running, done, interrupted, failed.');
    expect(() => store.setModelStatus(model.id, 'crashed' as 'done')).toThrow('Allowed: one of running, done, diverged, interrupted, skipped, failed.');
  });

  it('requires a reason to skip and a step to diverge', () => {
    expect(() => store.setModelStatus(model.id, 'skipped')).toThrow(/^reason: must be a non-empty string/);
    expect(() => store.setModelStatus(model.id, 'diverged')).toThrow(/^divergedStep: must be a non-negative integer/);
  });

  it('requires a reason to fail and a count as its step', () => {
    expect(() => store.setModelStatus(model.id, 'failed')).toThrow('reason: must be a non-empty string (received undefined)');
    expect(() => store.setModelStatus(model.id, 'failed', { reason: ' ' })).toThrow('reason: must be a non-empty string (received " ")');
    expect(() => store.setModelStatus(model.id, 'failed', { reason: 'oom', failedAfterStep: -1 })).toThrow(
      'failedAfterStep: must be a non-negative integer (received -1). Allowed: an integer >= 0.',
    );
    expect(() => store.setModelStatus(model.id, 'failed', { reason: 'oom', failedAfterStep: 2.5 })).toThrow(/^failedAfterStep: must be a non-negative integer/);
    expect(() => store.setModelStatus(model.id, 'done', { failedAfterStep: 3 })).toThrow(
      'failedAfterStep: is set for status done (received 3). Allowed: failedAfterStep only with status failed.',
    );
    expect(store.getModelById(model.id)?.status).toBe('running');
  });

  it('rejects unknown runs and models, and duplicate names', () => {
    expect(() => store.addModel('nope', SAMPLE_MODEL)).toThrow('runId: is not a run in this store (received "nope")');
    expect(() => store.recordStep(999, step)).toThrow('modelId: is not a model in this store (received 999)');
    expect(() => store.addModel('r', SAMPLE_MODEL)).toThrow('name: is already a model of run r (received "switch")');
    expect(() => store.createRun({ id: 'r', suite: 'smoke', manifest: sampleManifest() })).toThrow(/^id: is already used by a run/);
  });

  it('rejects bad counts', () => {
    expect(() => store.addModel('r', { ...SAMPLE_MODEL, name: 'x', totalParameters: -1 })).toThrow(/^totalParameters: must be a non-negative integer \(received -1\)/);
    expect(() => store.recordStep(model.id, { ...step, step: 1.5 })).toThrow(/^step: must be a non-negative integer/);
  });

  it('rejects unstorable measurements by field', () => {
    const next = { ...step, step: 2 };
    expect(() => store.recordStep(model.id, { ...next, lr: Number.NaN })).toThrow('lr: must be a finite number (received NaN). Allowed: a finite number.');
    expect(() => store.recordStep(model.id, { ...next, tokensPerSecond: Number.NaN })).toThrow(
      'tokensPerSecond: must be a number >= 0 (received NaN). Allowed: a number >= 0 (Infinity for a step too short to time).',
    );
    expect(() => store.recordStep(model.id, { ...next, trainingSeconds: -1 })).toThrow(/^trainingSeconds: must be a finite number >= 0 \(received -1\)/);
    expect(() => store.recordStep(model.id, { ...next, loss: undefined as unknown as number })).toThrow(
      'loss: must be a number (received undefined). Allowed: a number (NaN or Infinity for a diverged step).',
    );
    const evaluation = { step: 2, tokensSeen: 2, trainingSeconds: 2, evalSeconds: 0.1, valLoss: 1, perplexity: Math.E, bitsPerByte: 1 };
    expect(() => store.recordEvaluation(model.id, { ...evaluation, trainingSeconds: Number.NaN })).toThrow(/^trainingSeconds: must be a finite number >= 0 \(received NaN\)/);
    expect(() => store.recordEvaluation(model.id, { ...evaluation, evalSeconds: -0.5 })).toThrow(/^evalSeconds: must be a finite number >= 0/);
    const stats = { tokensPerExpert: [1, 1], keptPerExpert: [1, 1], droppedFraction: 0, routerEntropy: null, maxOverMeanLoad: 1, idleExperts: 0 };
    expect(() => store.recordRouting(model.id, 2, 'moe' as unknown as [])).toThrow(/^layers: must be an array/);
    expect(() => store.recordRouting(model.id, 2, [{ layer: 'moe', stats: { ...stats, droppedFraction: Number.NaN } }])).toThrow(
      'layers[0].stats.droppedFraction: must be a number in [0, 1] (received NaN). Allowed: a number in [0, 1].',
    );
    expect(() => store.recordRouting(model.id, 2, [{ layer: 'moe', stats: { ...stats, tokensPerExpert: [1, Number.NaN] } }])).toThrow(
      /^layers\[0\]\.stats\.tokensPerExpert\[1\]: must be a finite number >= 0 \(received NaN\)/,
    );
    expect(() => store.recordRouting(model.id, 2, [{ layer: 'moe', stats: { ...stats, idleExperts: -1 } }])).toThrow(/^layers\[0\]\.stats\.idleExperts: must be a non-negative integer/);
    // Nothing of the refused writes reached the store, and what was there is intact.
    expect(store.steps(model.id).map((row) => row.step)).toEqual([1]);
    expect(store.evaluations(model.id)).toEqual([]);
    expect(store.routing(model.id)).toEqual([]);
  });

  it('rejects manifests JSON cannot hold', () => {
    const manifest = sampleManifest();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => store.createRun({ suite: 'smoke', manifest: { ...manifest, extra: circular } })).toThrow(/^manifest: cannot be stored as JSON \(received .*circular/);
    expect(() => store.addModel('r', { ...SAMPLE_MODEL, name: 'big', config: { n: 1n } })).toThrow(/^config: cannot be stored as JSON/);
    expect(store.listRuns().map((run) => run.id)).toEqual(['r']);
  });

  it('rejects writes to a read-only store', () => {
    const reader = openStore(store.path, { readonly: true });
    expect(() => reader.createRun({ suite: 'x', manifest: sampleManifest() })).toThrow(/^store: is open read-only/);
    expect(() => reader.recordStep(model.id, step)).toThrow(ResultsError);
    expect(() => reader.query(`DELETE FROM steps`)).toThrow(/^sql: would write to the store/);
    reader.close();
  });
});

describe('run store paths', () => {
  it('rejects an empty path', () => {
    expect(() => openStore('')).toThrow('path: is empty (received "")');
  });

  it('rejects a missing file when opening read-only', () => {
    const missing = join(dir, 'missing.sqlite');
    expect(() => openStore(missing, { readonly: true })).toThrow(`path: does not exist (received ${JSON.stringify(missing)})`);
  });

  it('rejects a folder', () => {
    mkdirSync(join(dir, 'a-folder'), { recursive: true });
    expect(() => openStore(join(dir, 'a-folder'))).toThrow(/^path: is a folder/);
  });

  it('rejects a file that is not SQLite', () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database, just some text that is long enough to look like a header '.repeat(10));
    expect(() => openStore(text)).toThrow(/^path: is not a SQLite file/);
  });

  it('rejects a foreign SQLite file untouched', () => {
    const other = join(dir, 'other.sqlite');
    const db = new Database(other);
    db.exec('CREATE TABLE things (id INTEGER)');
    db.close();
    expect(() => openStore(other)).toThrow(/^path: is a SQLite file but not a moebench run store/);
    // Opening must not switch someone else's database to WAL mode.
    const after = new Database(other, { readonly: true });
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
    after.close();
    expect(existsSync(`${other}-wal`)).toBe(false);
  });

  it('rejects a newer schema untouched', () => {
    const newer = join(dir, 'newer.sqlite');
    const db = new Database(newer);
    db.exec('CREATE TABLE runs (id TEXT)');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openStore(newer, { readonly: true })).toThrow(`has schema version ${SCHEMA_VERSION + 1}, newer than this version reads`);
    expect(() => openStore(newer)).toThrow(`path: has schema version ${SCHEMA_VERSION + 1}, newer than this version reads`);
    const after = new Database(newer, { readonly: true });
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
    after.close();
  });

  it('rejects a file as parent folder', () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'text');
    expect(() => openStore(join(file, 'results.sqlite'))).toThrow(
      `path: cannot be created: ${JSON.stringify(file)} is a file, not a folder (received ${JSON.stringify(join(file, 'results.sqlite'))})`,
    );
  });

  it('creates missing parent folders for a new store', () => {
    const nested = join(dir, 'a', 'b', 'c', 'results.sqlite');
    const store = openStore(nested);
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    store.close();
  });
});

describe('hashConfig', () => {
  it('ignores key order and undefined fields', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: 3 }], a: 'x', z: undefined })).toBe('{"a":"x","b":[1,{"c":3,"d":2}]}');
    expect(hashConfig({ a: 1, b: 2 })).toBe(hashConfig({ b: 2, a: 1 }));
    expect(hashConfig({ a: 1 })).not.toBe(hashConfig({ a: 2 }));
    // SHA-256 of the text {"a":1}.
    expect(hashConfig({ a: 1 })).toBe('015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862');
  });
});

describe('run store options', () => {
  it('rejects an unknown synchronous setting', () => {
    expect(() => openStore(freshPath(), { synchronous: 'off' as 'full' })).toThrow('synchronous: is not a valid setting (received "off"). Allowed: full or normal.');
  });
});

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultsError, SCHEMA_VERSION, exportTable, openStore, type ResultsStore } from '../src/index.js';
import { sampleManifest, scratchDir } from './helpers.js';

const dir = scratchDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => join(dir, `v1-${counter++}.sqlite`);

const V1_SCHEMA = readFileSync(new URL('./fixtures/schema-v1.sql', import.meta.url), 'utf8');
const PER_MODEL_TABLES = ['steps', 'evaluations', 'routing', 'checkpoints'] as const;

/**
 * Writes a schema version 1 store the way version 1 of the package did: WAL mode, foreign keys on
 * (off when `orphanStep` requests a step of a missing model), the version 1 tables and user_version 1.
 * Model ids 3, 8 and 9 leave gaps, so a migration that renumbers rows shows.
 */
function writeV1Store(path: string, options: { orphanStep?: boolean } = {}): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`foreign_keys = ${options.orphanStep ? 'OFF' : 'ON'}`);
  db.exec(V1_SCHEMA);
  db.pragma('user_version = 1');

  const time = '2026-12-01T10:00:00.000Z';
  const manifest = JSON.stringify(sampleManifest());
  const insertRun = db.prepare(`INSERT INTO runs VALUES (?, 'quick', ?, 'hash', ?, ?, ?, ?, ?)`);
  insertRun.run('r1', manifest, 'done', null, time, time, time);
  insertRun.run('r2', manifest, 'interrupted', 'SIGINT', time, time, time);
  const insertModel = db.prepare(`INSERT INTO models VALUES (?, ?, ?, ?, ?, 1000, 400, 2000.5, ?, ?, ?, ?, ?, ?)`);
  insertModel.run(3, 'r1', 'switch', 'switch', '{"experts":4}', 'done', null, null, time, time, time);
  insertModel.run(8, 'r1', 'smlp', 'smlp', '{"experts":4,"seed":1}', 'diverged', 'loss NaN', 5, time, time, time);
  insertModel.run(9, 'r2', 'hash', 'hash', '{}', 'skipped', 'needs unigram counts', null, time, time, time);

  const insertStep = db.prepare(`INSERT INTO steps VALUES (?, ?, ?, 0.01, 0.003, 1.5, ?, 2048, ?, ?)`);
  const insertEvaluation = db.prepare(`INSERT INTO evaluations VALUES (?, ?, ?, ?, 0.2, 4.5, 90.0171313, 6.49, ?)`);
  const insertRouting = db.prepare(`INSERT INTO routing VALUES (?, ?, 0, 'block0.moe', '[3,1]', '[2,1]', 0.25, 0.6, 1.5, 0, '{}')`);
  for (const modelId of [3, 8]) {
    for (let step = 1; step <= 4; step++) {
      insertStep.run(modelId, step, step === 4 && modelId === 8 ? null : 5 - step / 10, step * 64, step * 0.5, time);
      insertRouting.run(modelId, step);
    }
    insertEvaluation.run(modelId, 4, 256, 2, time);
    db.prepare(`INSERT INTO checkpoints VALUES (?, 4, ?, '{"sampler":{"position":4}}', ?)`).run(modelId, `checkpoints/m${modelId}/step-4`, time);
  }
  if (options.orphanStep) insertStep.run(404, 1, 5, 64, 0.5, time);
  db.close();
}

/** Everything a reader sees of a store's runs and models, series included. */
function snapshot(store: ResultsStore): unknown {
  return store.listRuns().map((run) => ({
    run,
    models: store.listModels(run.id).map((model) => ({
      model,
      steps: store.steps(model.id),
      evaluations: store.evaluations(model.id),
      routing: store.routing(model.id),
      checkpoints: store.checkpoints(model.id),
    })),
  }));
}

function rawVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function countRows(db: Database.Database, table: string): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

describe('schema version 1 stores', () => {
  it('migrates a version 1 store opened for writing', () => {
    const path = freshPath();
    writeV1Store(path);
    const reader = openStore(path, { readonly: true });
    const before = snapshot(reader);
    reader.close();

    const store = openStore(path);
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(3);
    // Every run, model (under its id), step, evaluation, routing row and checkpoint is kept.
    expect(snapshot(store)).toEqual(before);
    expect(store.listModels('r1').map((model) => model.id)).toEqual([3, 8]);
    expect(store.steps(8).map((step) => step.loss)).toEqual([4.9, 4.8, 4.7, null]);

    store.setModelStatus(3, 'failed', { reason: 'RuntimeError: Aborted(OOM)', failedAfterStep: 4 });
    expect(store.getModelById(3)).toMatchObject({ status: 'failed', reason: 'RuntimeError: Aborted(OOM)', failedAfterStep: 4 });
    expect(store.addModel('r2', { name: 'gshard', architecture: 'gshard', config: {}, totalParameters: 1, activeParametersPerToken: 1, forwardFlopsPerToken: 1 }).id).toBe(10);
    store.close();
    // Version 1 goes through version 2 to the current version 3.
    expect(rawVersion(path)).toBe(3);
  });

  it('keeps the foreign keys of the child tables', () => {
    const path = freshPath();
    writeV1Store(path);
    openStore(path).close();

    const db = new Database(path);
    try {
      db.pragma('foreign_keys = ON');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'models%'`).all()).toEqual([{ name: 'models' }]);
      for (const table of PER_MODEL_TABLES) {
        const parents = db.pragma(`foreign_key_list(${table})`) as Array<{ table: string; on_delete: string }>;
        expect(parents.map((parent) => [parent.table, parent.on_delete]), table).toEqual([['models', 'CASCADE']]);
      }
      expect(() => db.prepare(`INSERT INTO steps VALUES (404, 1, 1, 0, 0.1, 1, 1, 1, 1, 'now')`).run()).toThrow('FOREIGN KEY constraint failed');
      expect(() => db.prepare(`UPDATE models SET status = 'crashed' WHERE id = 3`).run()).toThrow('CHECK constraint failed');

      // Deleting run r1 cascades through the rebuilt models table to every series of its models.
      db.prepare(`DELETE FROM runs WHERE id = 'r1'`).run();
      expect(countRows(db, 'models')).toBe(1);
      for (const table of PER_MODEL_TABLES) expect(countRows(db, table), table).toBe(0);
    } finally {
      db.close();
    }
  });

  it('reads a version 1 store read-only without migrating it', () => {
    const path = freshPath();
    writeV1Store(path);
    const reader = openStore(path, { readonly: true });
    expect(reader.schemaVersion()).toBe(1);
    expect(reader.getModelById(8)).toMatchObject({ name: 'smlp', status: 'diverged', reason: 'loss NaN', divergedStep: 5, failedAfterStep: null });
    expect(reader.getModel('r2', 'hash')).toMatchObject({ status: 'skipped', reason: 'needs unigram counts', failedAfterStep: null });
    expect(reader.steps(3)).toHaveLength(4);
    expect(reader.latestCheckpoint(8)).toMatchObject({ step: 4, state: { sampler: { position: 4 } } });
    expect(exportTable(reader, 'models', 'csv').split('\r\n')[0]).not.toContain('failed_after_step');
    reader.close();
    expect(rawVersion(path)).toBe(1);
  });

  it('leaves a store it cannot migrate at version 1', () => {
    const path = freshPath();
    writeV1Store(path, { orphanStep: true });

    let error: unknown;
    try {
      openStore(path);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ResultsError);
    expect((error as ResultsError).message).toBe(
      `path: cannot be migrated from schema version 1: 1 row(s) refer to a missing run or model, the first in table steps (received ${JSON.stringify(path)}). ` +
        'Allowed: a run store whose rows all refer to stored runs and models.',
    );

    // The transaction rolled back: the old table, its CHECK and every row are as they were.
    expect(rawVersion(path)).toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      const sql = (db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'models'`).get() as { sql: string }).sql;
      expect(sql).not.toContain('failed');
      expect(countRows(db, 'models')).toBe(3);
      expect(countRows(db, 'steps')).toBe(9);
      expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'models_v2'`).get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});

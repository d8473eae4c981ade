import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultsError, SCHEMA_VERSION, exportTable, openStore, type EvaluationInput, type ResultsStore } from '../src/index.js';
import { SAMPLE_MODEL, sampleManifest, scratchDir } from './helpers.js';

const dir = scratchDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => join(dir, `positions-${counter++}.sqlite`);

const V2_SCHEMA = readFileSync(new URL('./fixtures/schema-v2.sql', import.meta.url), 'utf8');

/**
 * Writes a schema version 2 store the way version 2 of the package did: WAL mode, foreign keys on,
 * the version 2 tables and user_version 2. Model 4 (switch, done) has evaluations at steps 0 and 8,
 * model 7 (smlp, failed after step 3) one at step 0.
 */
function writeV2Store(path: string): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(V2_SCHEMA);
  db.pragma('user_version = 2');
  const time = '2026-12-02T08:00:00.000Z';
  db.prepare(`INSERT INTO runs VALUES ('r1', 'quick', ?, 'hash', 'done', NULL, ?, ?, ?)`).run(JSON.stringify(sampleManifest()), time, time, time);
  const insertModel = db.prepare(`INSERT INTO models VALUES (?, 'r1', ?, ?, '{}', 1000, 400, 2000, ?, ?, NULL, ?, ?, ?, ?)`);
  insertModel.run(4, 'switch', 'switch', 'done', null, null, time, time, time);
  insertModel.run(7, 'smlp', 'smlp', 'failed', 'RangeError: balancedAssignment', 3, time, time, time);
  const insertEvaluation = db.prepare(`INSERT INTO evaluations VALUES (?, ?, ?, ?, 0.2, ?, ?, ?, ?)`);
  insertEvaluation.run(4, 0, 0, 0, Math.log(256), 256, 8, time);
  insertEvaluation.run(4, 8, 512, 4, 4.5, 90.0171313, 6.49, time);
  insertEvaluation.run(7, 0, 0, 0, Math.log(250), 250, 7.97, time);
  db.close();
}

function rawVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Returns every evaluation of the store's models 4 and 7. */
function evaluationsOf(store: ResultsStore): unknown {
  return [4, 7].map((modelId) => store.evaluations(modelId));
}

const EVALUATION: EvaluationInput = {
  step: 10,
  tokensSeen: 640,
  trainingSeconds: 5,
  evalSeconds: 0.25,
  valLoss: 2,
  perplexity: Math.exp(2),
  bitsPerByte: 2.9,
};

function storeWithModel(): { store: ResultsStore; modelId: number } {
  const store = openStore(freshPath());
  const run = store.createRun({ suite: 'smoke', manifest: sampleManifest() });
  return { store, modelId: store.addModel(run.id, SAMPLE_MODEL).id };
}

describe('schema version 2 stores', () => {
  it('migrates a version 2 store opened for writing', () => {
    const path = freshPath();
    writeV2Store(path);
    const reader = openStore(path, { readonly: true });
    const before = evaluationsOf(reader);
    reader.close();

    const store = openStore(path);
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(3);
    // The evaluations stored before read the same, without per-position figures.
    expect(evaluationsOf(store)).toEqual(before);
    expect(store.evaluations(4)).toHaveLength(2);
    expect(store.evaluations(4)[1]).toMatchObject({ step: 8, perplexity: 90.0171313, positionLossSums: null, positionCounts: null });
    expect(store.getModelById(7)).toMatchObject({ status: 'failed', failedAfterStep: 3 });

    // New evaluations of the migrated store keep their per-position figures.
    store.recordEvaluation(4, { ...EVALUATION, step: 12, positionLossSums: [0, 3.5, 2.25], positionCounts: [0, 2, 2] });
    expect(store.evaluations(4)[2]).toMatchObject({ step: 12, positionLossSums: [0, 3.5, 2.25], positionCounts: [0, 2, 2] });
    store.close();
    expect(rawVersion(path)).toBe(3);

    const db = new Database(path, { readonly: true });
    try {
      const columns = (db.pragma('table_info(evaluations)') as Array<{ name: string }>).map((column) => column.name);
      expect(columns.slice(-2)).toEqual(['position_loss_sums', 'position_counts']);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('reads a version 2 store read-only without migrating it', () => {
    const path = freshPath();
    writeV2Store(path);
    const reader = openStore(path, { readonly: true });
    expect(reader.schemaVersion()).toBe(2);
    expect(reader.evaluations(7)).toEqual([
      expect.objectContaining({ step: 0, perplexity: 250, positionLossSums: null, positionCounts: null }),
    ]);
    expect(exportTable(reader, 'evaluations', 'csv').split('\r\n')[0]).not.toContain('position_counts');
    reader.close();
    expect(rawVersion(path)).toBe(2);
  });
});

describe('per-position evaluation figures', () => {
  it('stores the loss sums and counts by position and exports them as JSON', () => {
    const { store, modelId } = storeWithModel();
    store.recordEvaluation(modelId, { ...EVALUATION, positionLossSums: [0, 0, 7.5, 6], positionCounts: [0, 0, 3, 3] });
    store.recordEvaluation(modelId, { ...EVALUATION, step: 11 });
    const [withPositions, without] = store.evaluations(modelId);
    expect(withPositions).toMatchObject({ positionLossSums: [0, 0, 7.5, 6], positionCounts: [0, 0, 3, 3] });
    expect(without).toMatchObject({ step: 11, positionLossSums: null, positionCounts: null });

    const lines = exportTable(store, 'evaluations', 'jsonl').trim().split('\n');
    expect(JSON.parse(lines[0])).toMatchObject({ step: 10, position_loss_sums: [0, 0, 7.5, 6], position_counts: [0, 0, 3, 3] });
    expect(JSON.parse(lines[1])).toMatchObject({ step: 11, position_loss_sums: null, position_counts: null });
    expect(exportTable(store, 'evaluations', 'csv')).toContain('"[0,0,7.5,6]","[0,0,3,3]"');
    store.close();
  });

  it('keeps a diverged evaluation, reading a sum that was not finite as null', () => {
    const { store, modelId } = storeWithModel();
    store.recordEvaluation(modelId, { ...EVALUATION, valLoss: NaN, perplexity: NaN, positionLossSums: [NaN, Infinity, 1.5], positionCounts: [2, 2, 2] });
    expect(store.evaluations(modelId)[0]).toMatchObject({ perplexity: null, positionLossSums: [null, null, 1.5], positionCounts: [2, 2, 2] });
    store.close();
  });

  it('rejects malformed per-position figures before writing anything', () => {
    const { store, modelId } = storeWithModel();
    const attempt = (fields: Partial<EvaluationInput>): unknown => {
      try {
        store.recordEvaluation(modelId, { ...EVALUATION, ...fields });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const both = 'Allowed: both positionLossSums and positionCounts, arrays of equal non-zero length, or neither.';

    const onlySums = attempt({ positionLossSums: [1, 2] });
    expect(onlySums).toBeInstanceOf(ResultsError);
    expect((onlySums as ResultsError).message).toBe(
      `positionCounts: must be an array when the other per-position field is given (received undefined). ${both}`,
    );
    expect((attempt({ positionLossSums: [1, 2], positionCounts: [1] }) as ResultsError).message).toBe(
      `positionLossSums: must have one entry per position, as positionCounts has 1 (received "2 entries"). ${both}`,
    );
    expect((attempt({ positionLossSums: [], positionCounts: [] }) as ResultsError).field).toBe('positionLossSums');
    expect((attempt({ positionLossSums: [1, 2], positionCounts: [1, 1.5] }) as ResultsError).message).toBe(
      'positionCounts[1]: must be a non-negative integer (received 1.5). Allowed: an integer >= 0.',
    );
    expect((attempt({ positionLossSums: [1, '2' as unknown as number], positionCounts: [1, 1] }) as ResultsError).field).toBe('positionLossSums[1]');
    expect(store.evaluations(modelId)).toEqual([]);
    store.close();
  });
});

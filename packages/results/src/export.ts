import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResultsError } from './errors.js';
import type { ResultsStore } from './store.js';

/** Tables that can be exported. */
export const EXPORT_TABLES = ['runs', 'models', 'steps', 'evaluations', 'routing', 'checkpoints'] as const;

/** An exportable table. */
export type ExportTable = (typeof EXPORT_TABLES)[number];

/** Export formats: comma-separated values (RFC 4180) and JSON lines (one object per line). */
export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;

/** An export format. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

// Columns that hold JSON text: kept as text in CSV, parsed into values in JSON lines.
const JSON_COLUMNS = new Set(['manifest', 'config', 'tokens_per_expert', 'kept_per_expert', 'extra', 'state', 'position_loss_sums', 'position_counts']);

// Per-model tables are joined with models so each row names its run and model.
const SELECTS: Record<ExportTable, string> = {
  runs: `SELECT * FROM runs t WHERE (@runId IS NULL OR t.id = @runId) ORDER BY t.started_at, t.id`,
  models: `SELECT * FROM models t WHERE (@runId IS NULL OR t.run_id = @runId) ORDER BY t.id`,
  steps: perModel('steps', 't.step'),
  evaluations: perModel('evaluations', 't.step'),
  routing: perModel('routing', 't.step, t.layer_index'),
  checkpoints: perModel('checkpoints', 't.step'),
};

function perModel(table: string, order: string): string {
  return `SELECT m.run_id AS run_id, m.name AS model, t.* FROM ${table} t JOIN models m ON m.id = t.model_id
          WHERE (@runId IS NULL OR m.run_id = @runId) ORDER BY m.run_id, m.id, ${order}`;
}

/** Reads the rows of `table`, all runs or only `runId`, with column names as in the schema. */
export function exportRows(store: ResultsStore, table: ExportTable, runId?: string): Array<Record<string, unknown>> {
  if (!(EXPORT_TABLES as readonly string[]).includes(table)) {
    throw new ResultsError('table', table, 'is not an exportable table', `one of ${EXPORT_TABLES.join(', ')}`);
  }
  return store.query(SELECTS[table], { runId: runId ?? null });
}

/**
 * Formats rows as CSV (RFC 4180): a header line from the first row's keys, fields with a comma,
 * quote or line break quoted with inner quotes doubled, null as an empty field, lines ended by CRLF.
 * JSON columns stay JSON text.
 */
export function toCsv(rows: Array<Record<string, unknown>>, columns: string[] = rows.length > 0 ? Object.keys(rows[0]) : []): string {
  const field = (value: unknown): string => {
    if (value === null || value === undefined) return '';
    const text = typeof value === 'string' ? value : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [columns.map(field).join(',')];
  for (const row of rows) lines.push(columns.map((column) => field(row[column])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * Formats rows as JSON lines: one object per line, JSON columns parsed into values, and numbers
 * JSON cannot hold (Infinity) written as null.
 */
export function toJsonLines(rows: Array<Record<string, unknown>>): string {
  return rows
    .map((row) => {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(row)) {
        out[key] = JSON_COLUMNS.has(key) && typeof value === 'string' ? JSON.parse(value) : value;
      }
      return `${JSON.stringify(out)}\n`;
    })
    .join('');
}

/** Exports one table as text in `format`, all runs or only `runId`. */
export function exportTable(store: ResultsStore, table: ExportTable, format: ExportFormat, runId?: string): string {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ResultsError('format', format, 'is not an export format', `one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const rows = exportRows(store, table, runId);
  // The header comes from the query, so a table without rows still exports its column names.
  return format === 'csv' ? toCsv(rows, store.queryColumns(SELECTS[table])) : toJsonLines(rows);
}

/**
 * Writes every table of run `runId` to `dir` as `<table>.<format>` (the folder is created when
 * missing) and returns the paths written.
 */
export function exportRun(store: ResultsStore, runId: string, dir: string, format: ExportFormat = 'csv'): string[] {
  if (!store.getRun(runId)) {
    throw new ResultsError('runId', runId, 'is not a run in this store', 'the id of a stored run (see listRuns)');
  }
  if (typeof dir !== 'string' || dir.trim() === '') {
    throw new ResultsError('dir', dir, 'is empty', 'a folder path for the exported files');
  }
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ResultsError('format', format, 'is not an export format', `one of ${EXPORT_FORMATS.join(', ')}`);
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new ResultsError('dir', dir, 'is a file, not a folder', 'a folder path for the exported files');
  }
  mkdirSync(dir, { recursive: true });
  return EXPORT_TABLES.map((table) => {
    const path = join(dir, `${table}.${format}`);
    writeFileSync(path, exportTable(store, table, format, runId));
    return path;
  });
}

/**
 * Version of the table layout below, stored in SQLite's `PRAGMA user_version`. Raise it with every
 * change to the tables, and teach `openStore` to migrate older stores or reject them.
 *
 * - 1: the first layout.
 * - 2: models may end as `failed`, with the column `failed_after_step`.
 * - 3: evaluations may hold the loss sum and the count of scored targets at each sequence position,
 *   in the columns `position_loss_sums` and `position_counts`.
 */
export const SCHEMA_VERSION = 3;

/** Statuses of a run. */
export const RUN_STATUSES = ['running', 'done', 'interrupted', 'failed'] as const;

/** A run's status: `running` until it ends as `done`, `interrupted` (stopped by a signal) or `failed` (an error). */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses of one model inside a run. */
export const MODEL_STATUSES = ['running', 'done', 'diverged', 'interrupted', 'skipped', 'failed'] as const;

/**
 * A model's status: `running`, then `done`, `diverged` (loss turned NaN or infinite, with the step),
 * `interrupted`, `skipped` (not trained, with the reason) or `failed` (training raised an error,
 * with the message and the steps completed before it).
 */
export type ModelStatus = (typeof MODEL_STATUSES)[number];

const quoted = (values: readonly string[]): string => values.map((value) => `'${value}'`).join(', ');

/**
 * The `models` table under the name `table`: the schema creates it as `models`, and the migration
 * from version 1 builds it under another name before it replaces the old table.
 */
function modelsTableSql(table: string): string {
  return `CREATE TABLE ${table} (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  architecture TEXT NOT NULL,
  config TEXT NOT NULL,
  total_parameters INTEGER NOT NULL,
  active_parameters_per_token INTEGER NOT NULL,
  forward_flops_per_token REAL NOT NULL,
  status TEXT NOT NULL CHECK (status IN (${quoted(MODEL_STATUSES)})),
  reason TEXT,
  diverged_step INTEGER,
  failed_after_step INTEGER,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT,
  UNIQUE (run_id, name)
);`;
}

/** The tables of a run store; docs/results-store.md describes every column. */
export const SCHEMA_SQL = `
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  suite TEXT NOT NULL,
  manifest TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN (${quoted(RUN_STATUSES)})),
  error TEXT,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT
);

${modelsTableSql('models')}

CREATE TABLE steps (
  model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  loss REAL,
  aux_loss REAL,
  lr REAL NOT NULL,
  grad_norm REAL,
  tokens_seen INTEGER NOT NULL,
  tokens_per_second REAL NOT NULL,
  training_seconds REAL NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (model_id, step)
) WITHOUT ROWID;

CREATE TABLE evaluations (
  model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  tokens_seen INTEGER NOT NULL,
  training_seconds REAL NOT NULL,
  eval_seconds REAL NOT NULL,
  val_loss REAL,
  perplexity REAL,
  bits_per_byte REAL,
  recorded_at TEXT NOT NULL,
  position_loss_sums TEXT,
  position_counts TEXT,
  PRIMARY KEY (model_id, step)
) WITHOUT ROWID;

CREATE TABLE routing (
  model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  layer_index INTEGER NOT NULL,
  layer TEXT NOT NULL,
  tokens_per_expert TEXT NOT NULL,
  kept_per_expert TEXT NOT NULL,
  dropped_fraction REAL NOT NULL,
  router_entropy REAL,
  max_over_mean_load REAL,
  idle_experts INTEGER NOT NULL,
  extra TEXT NOT NULL,
  PRIMARY KEY (model_id, step, layer_index)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  state TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (model_id, step)
) WITHOUT ROWID;
`;

// Columns of the version 1 `models` table, all kept by the migration to version 2.
const MODELS_V1_COLUMNS = [
  'id',
  'run_id',
  'name',
  'architecture',
  'config',
  'total_parameters',
  'active_parameters_per_token',
  'forward_flops_per_token',
  'status',
  'reason',
  'diverged_step',
  'started_at',
  'updated_at',
  'finished_at',
].join(', ');

/**
 * SQL that turns a store of schema version `v` into version `v + 1`, by `v`. The caller runs each
 * script in one transaction with foreign keys off, then checks the foreign keys and sets
 * `user_version`.
 *
 * 1 to 2 adds `failed` to the CHECK on `models.status`. SQLite cannot alter a CHECK, so the table is
 * rebuilt: created as `models_v2`, filled with every row under its id, and renamed over the old
 * table. The child tables name `models` in their foreign keys and so refer to the new table. Foreign
 * keys must be off during the drop, because with them on, dropping `models` deletes every step,
 * evaluation, routing row and checkpoint through ON DELETE CASCADE.
 *
 * 2 to 3 adds the per-position columns of `evaluations`, null in every evaluation stored before.
 */
export const MIGRATIONS: Readonly<Record<number, string>> = {
  1: `
${modelsTableSql('models_v2')}
INSERT INTO models_v2 (${MODELS_V1_COLUMNS}) SELECT ${MODELS_V1_COLUMNS} FROM models;
DROP TABLE models;
ALTER TABLE models_v2 RENAME TO models;
`,
  2: `
ALTER TABLE evaluations ADD COLUMN position_loss_sums TEXT;
ALTER TABLE evaluations ADD COLUMN position_counts TEXT;
`,
};

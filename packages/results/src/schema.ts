/**
 * Version of the table layout below, stored in SQLite's `PRAGMA user_version`. Raise it with every
 * change to the tables, and teach `openStore` to migrate older stores or reject them.
 */
export const SCHEMA_VERSION = 1;

/** Statuses of a run. */
export const RUN_STATUSES = ['running', 'done', 'interrupted', 'failed'] as const;

/** A run's status: `running` until it ends as `done`, `interrupted` (stopped by a signal) or `failed` (an error). */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses of one model inside a run. */
export const MODEL_STATUSES = ['running', 'done', 'diverged', 'interrupted', 'skipped'] as const;

/**
 * A model's status: `running`, then `done`, `diverged` (loss turned NaN or infinite, with the step),
 * `interrupted`, or `skipped` (with the reason).
 */
export type ModelStatus = (typeof MODEL_STATUSES)[number];

const quoted = (values: readonly string[]): string => values.map((value) => `'${value}'`).join(', ');

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

CREATE TABLE models (
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
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT,
  UNIQUE (run_id, name)
);

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

import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ResultsError } from './errors.js';
import { MIGRATIONS, MODEL_STATUSES, RUN_STATUSES, SCHEMA_SQL, SCHEMA_VERSION, type ModelStatus, type RunStatus } from './schema.js';
import type {
  CheckpointRecord,
  EvaluationInput,
  EvaluationRecord,
  ModelInput,
  ModelRecord,
  RoutingRecord,
  RoutingStatsInput,
  RunManifest,
  RunRecord,
  StepInput,
  StepRecord,
} from './types.js';

/** Options of `openStore`. */
export interface OpenStoreOptions {
  /**
   * Open an existing store for reading only (reports, exports); every write then raises a
   * ResultsError. Default: false, which creates the file and its folder when missing.
   */
  readonly?: boolean;
  /**
   * SQLite `synchronous` setting of a writable store. `full` syncs the WAL file at every commit, so a
   * finished write survives a process kill and a power loss or OS crash. `normal` syncs only at WAL
   * checkpoints and makes each write cheaper. A finished write still survives a process kill
   * (SIGKILL included), but the last writes before a power loss or OS crash may be lost.
   * Default: `full`.
   */
  synchronous?: 'full' | 'normal';
}

/** Input of `createRun`. */
export interface CreateRunInput {
  /** Run id. Default: `<suite>-<UTC date>-<time>`, with `-2`, `-3`, ... appended when taken. */
  id?: string;
  /** Suite name, for example `quick`. */
  suite: string;
  /** The run manifest; `configHash` is copied to its own column for lookups. */
  manifest: RunManifest;
}

type Row = Record<string, unknown>;

/**
 * Opens (or creates) a run store at `path`: a SQLite file in WAL mode with synchronous = FULL, and
 * every write its own transaction, so a process killed at any moment leaves every finished write
 * in the file. A store of an older schema version opened for writing is migrated to
 * `SCHEMA_VERSION` first; opened read-only, it is read as it is. Bad paths raise a ResultsError
 * before anything is written.
 */
export function openStore(path: string, options: OpenStoreOptions = {}): ResultsStore {
  return new ResultsStore(path, options);
}

/** A run store: runs, their models, and each model's steps, evaluations, routing statistics and checkpoints. */
export class ResultsStore {
  /** Absolute path of the SQLite file. */
  readonly path: string;
  /** Whether the store was opened read-only. */
  readonly readonly: boolean;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string, options: OpenStoreOptions = {}) {
    if (typeof path !== 'string' || path.trim() === '') {
      throw new ResultsError('path', path, 'is empty', 'a file path for the run store, for example runs/results.sqlite');
    }
    this.path = resolve(path);
    this.readonly = options.readonly ?? false;
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') {
      throw new ResultsError('synchronous', synchronous, 'is not a valid setting', 'full or normal');
    }
    this.db = openDatabase(this.path, this.readonly);
    try {
      // The file is checked before anything is set on it, so a foreign or newer file stays as it was.
      const version = this.checkSchema();
      if (!this.readonly) {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
        if (version === 0) this.createSchema();
        else if (version < SCHEMA_VERSION) this.migrateSchema(version);
      }
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  /** Schema version of the file (`SCHEMA_VERSION` for stores this version writes). */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Closes the file. The store cannot be used afterwards. */
  close(): void {
    this.db.close();
  }

  // ---- runs ----

  /** Records a new run with status `running` and returns it. */
  createRun(input: CreateRunInput): RunRecord {
    this.checkWritable();
    requireText('suite', input.suite);
    if (input.manifest === null || typeof input.manifest !== 'object') {
      throw new ResultsError('manifest', input.manifest, 'must be an object', 'a RunManifest');
    }
    requireText('manifest.configHash', input.manifest.configHash);
    const manifestJson = toJson('manifest', input.manifest);
    const now = timestamp();
    const id = input.id ?? this.freeRunId(`${input.suite}-${now.slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`);
    requireText('id', id);
    if (this.getRun(id)) {
      throw new ResultsError('id', id, 'is already used by a run in this store', 'a new run id, or omit id to get one');
    }
    this.statement(
      `INSERT INTO runs (id, suite, manifest, config_hash, status, error, started_at, updated_at, finished_at)
       VALUES (?, ?, ?, ?, 'running', NULL, ?, ?, NULL)`,
    ).run(id, input.suite, manifestJson, input.manifest.configHash, now, now);
    return this.getRun(id)!;
  }

  /** Sets a run's status; `error` is the failure message or interruption cause. Ending statuses set `finishedAt`. */
  setRunStatus(runId: string, status: RunStatus, error: string | null = null): void {
    this.checkWritable();
    requireOneOf('status', status, RUN_STATUSES);
    this.requireRun(runId);
    const now = timestamp();
    this.statement(`UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?`).run(
      status,
      error,
      now,
      status === 'running' ? null : now,
      runId,
    );
  }

  /** Returns the run `runId`, or undefined. */
  getRun(runId: string): RunRecord | undefined {
    const row = this.statement(`SELECT * FROM runs WHERE id = ?`).get(runId) as Row | undefined;
    return row && toRun(row);
  }

  /** Returns every run, oldest first. */
  listRuns(): RunRecord[] {
    return (this.statement(`SELECT * FROM runs ORDER BY started_at, id`).all() as Row[]).map(toRun);
  }

  /** Returns the most recently started run (of `suite` when given), or undefined. */
  latestRun(suite?: string): RunRecord | undefined {
    const row = (
      suite === undefined
        ? this.statement(`SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1`).get()
        : this.statement(`SELECT * FROM runs WHERE suite = ? ORDER BY started_at DESC, rowid DESC LIMIT 1`).get(suite)
    ) as Row | undefined;
    return row && toRun(row);
  }

  // ---- models ----

  /** Adds a model to a run with status `running` and returns it. */
  addModel(runId: string, input: ModelInput): ModelRecord {
    this.checkWritable();
    this.requireRun(runId);
    requireText('name', input.name);
    requireText('architecture', input.architecture);
    requireCount('totalParameters', input.totalParameters);
    requireCount('activeParametersPerToken', input.activeParametersPerToken);
    requireNonNegative('forwardFlopsPerToken', input.forwardFlopsPerToken);
    if (this.getModel(runId, input.name)) {
      throw new ResultsError('name', input.name, `is already a model of run ${runId}`, 'a name unique within the run');
    }
    const configJson = toJson('config', input.config ?? null);
    const now = timestamp();
    const result = this.statement(
      `INSERT INTO models (run_id, name, architecture, config, total_parameters, active_parameters_per_token,
         forward_flops_per_token, status, reason, diverged_step, started_at, updated_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'running', NULL, NULL, ?, ?, NULL)`,
    ).run(
      runId,
      input.name,
      input.architecture,
      configJson,
      input.totalParameters,
      input.activeParametersPerToken,
      input.forwardFlopsPerToken,
      now,
      now,
    );
    return this.getModelById(Number(result.lastInsertRowid))!;
  }

  /**
   * Sets a model's status. `reason` explains a skip or a failure (required for `skipped` and
   * `failed`); `divergedStep` is required for `diverged`. `failedAfterStep`, for `failed`, is the
   * number of steps completed before the error, when known. Ending statuses set `finishedAt`.
   */
  setModelStatus(
    modelId: number,
    status: ModelStatus,
    detail: { reason?: string; divergedStep?: number; failedAfterStep?: number } = {},
  ): void {
    this.checkWritable();
    requireOneOf('status', status, MODEL_STATUSES);
    this.requireModel(modelId);
    if (status === 'skipped' || status === 'failed') requireText('reason', detail.reason);
    if (status === 'diverged') requireCount('divergedStep', detail.divergedStep);
    if (detail.failedAfterStep !== undefined) {
      if (status !== 'failed') {
        throw new ResultsError('failedAfterStep', detail.failedAfterStep, `is set for status ${status}`, 'failedAfterStep only with status failed');
      }
      requireCount('failedAfterStep', detail.failedAfterStep);
    }
    const now = timestamp();
    this.statement(
      `UPDATE models SET status = ?, reason = ?, diverged_step = ?, failed_after_step = ?, updated_at = ?, finished_at = ? WHERE id = ?`,
    ).run(
      status,
      detail.reason ?? null,
      detail.divergedStep ?? null,
      detail.failedAfterStep ?? null,
      now,
      status === 'running' ? null : now,
      modelId,
    );
  }

  /** Returns the model called `name` in run `runId`, or undefined. */
  getModel(runId: string, name: string): ModelRecord | undefined {
    const row = this.statement(`SELECT * FROM models WHERE run_id = ? AND name = ?`).get(runId, name) as Row | undefined;
    return row && toModel(row);
  }

  /** Returns the model with store id `modelId`, or undefined. */
  getModelById(modelId: number): ModelRecord | undefined {
    const row = this.statement(`SELECT * FROM models WHERE id = ?`).get(modelId) as Row | undefined;
    return row && toModel(row);
  }

  /** Returns the models of a run, in the order they were added. */
  listModels(runId: string): ModelRecord[] {
    return (this.statement(`SELECT * FROM models WHERE run_id = ? ORDER BY id`).all(runId) as Row[]).map(toModel);
  }

  // ---- series ----

  /** Records one training step; a step number already stored for the model raises a ResultsError. */
  recordStep(modelId: number, input: StepInput): void {
    this.checkWritable();
    this.requireModel(modelId);
    requireCount('step', input.step);
    requireCount('tokensSeen', input.tokensSeen);
    requireNumber('loss', input.loss);
    if (input.auxLoss !== undefined) requireNumber('auxLoss', input.auxLoss);
    requireFinite('lr', input.lr);
    requireNumber('gradNorm', input.gradNorm);
    if (typeof input.tokensPerSecond !== 'number' || !(input.tokensPerSecond >= 0)) {
      throw new ResultsError('tokensPerSecond', input.tokensPerSecond, 'must be a number >= 0', 'a number >= 0 (Infinity for a step too short to time)');
    }
    requireNonNegative('trainingSeconds', input.trainingSeconds);
    this.insertUnique('step', input.step, modelId, () =>
      this.statement(
        `INSERT INTO steps (model_id, step, loss, aux_loss, lr, grad_norm, tokens_seen, tokens_per_second, training_seconds, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        modelId,
        input.step,
        input.loss,
        input.auxLoss ?? 0,
        input.lr,
        input.gradNorm,
        input.tokensSeen,
        input.tokensPerSecond,
        input.trainingSeconds,
        timestamp(),
      ),
    );
  }

  /** Records one evaluation; a step already evaluated for the model raises a ResultsError. */
  recordEvaluation(modelId: number, input: EvaluationInput): void {
    this.checkWritable();
    this.requireModel(modelId);
    requireCount('step', input.step);
    requireCount('tokensSeen', input.tokensSeen);
    requireNonNegative('trainingSeconds', input.trainingSeconds);
    requireNonNegative('evalSeconds', input.evalSeconds);
    requireNumber('valLoss', input.valLoss);
    requireNumber('perplexity', input.perplexity);
    requireNumber('bitsPerByte', input.bitsPerByte);
    const positions = positionColumns(input.positionLossSums, input.positionCounts);
    this.insertUnique('step', input.step, modelId, () =>
      this.statement(
        `INSERT INTO evaluations (model_id, step, tokens_seen, training_seconds, eval_seconds, val_loss, perplexity, bits_per_byte, recorded_at,
           position_loss_sums, position_counts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        modelId,
        input.step,
        input.tokensSeen,
        input.trainingSeconds,
        input.evalSeconds,
        input.valLoss,
        input.perplexity,
        input.bitsPerByte,
        timestamp(),
        positions.sums,
        positions.counts,
      ),
    );
  }

  /**
   * Records the routing statistics of every MoE layer of a model for one step, in one transaction:
   * `layers[i]` is MoE layer i, as a model's forward pass returns them.
   */
  recordRouting(modelId: number, step: number, layers: Array<{ layer: string; stats: RoutingStatsInput }>): void {
    this.checkWritable();
    this.requireModel(modelId);
    requireCount('step', step);
    if (!Array.isArray(layers)) {
      throw new ResultsError('layers', toJsonOrText(layers), 'must be an array', 'one { layer, stats } entry per MoE layer');
    }
    layers.forEach((entry, index) => {
      const where = `layers[${index}]`;
      if (entry === null || typeof entry !== 'object' || entry.stats === null || typeof entry.stats !== 'object') {
        throw new ResultsError(where, toJsonOrText(entry), 'must be a { layer, stats } entry', 'RoutingStats of one MoE layer with its name');
      }
      requireText(`${where}.layer`, entry.layer);
      const stats = entry.stats;
      if (!Array.isArray(stats.tokensPerExpert) || !Array.isArray(stats.keptPerExpert)) {
        throw new ResultsError(`${where}.stats`, toJsonOrText(stats), 'lacks tokensPerExpert or keptPerExpert', 'RoutingStats');
      }
      requireCounts(`${where}.stats.tokensPerExpert`, stats.tokensPerExpert);
      requireCounts(`${where}.stats.keptPerExpert`, stats.keptPerExpert);
      requireFraction(`${where}.stats.droppedFraction`, stats.droppedFraction);
      requireNumber(`${where}.stats.maxOverMeanLoad`, stats.maxOverMeanLoad);
      if (stats.routerEntropy !== null) requireNumber(`${where}.stats.routerEntropy`, stats.routerEntropy);
      requireCount(`${where}.stats.idleExperts`, stats.idleExperts);
    });
    const insert = this.statement(
      `INSERT INTO routing (model_id, step, layer_index, layer, tokens_per_expert, kept_per_expert, dropped_fraction,
         router_entropy, max_over_mean_load, idle_experts, extra)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertAll = this.db.transaction(() => {
      layers.forEach(({ layer, stats }, index) => {
        insert.run(
          modelId,
          step,
          index,
          layer,
          JSON.stringify(stats.tokensPerExpert),
          JSON.stringify(stats.keptPerExpert),
          stats.droppedFraction,
          stats.routerEntropy,
          stats.maxOverMeanLoad,
          stats.idleExperts,
          toJson(`layers[${index}].stats.extra`, stats.extra ?? {}),
        );
      });
    });
    this.insertUnique('step', step, modelId, () => insertAll());
  }

  /** Records a checkpoint written at `step`, with the state the trainer needs to resume from it. */
  recordCheckpoint(modelId: number, checkpoint: { step: number; path: string; state?: unknown }): void {
    this.checkWritable();
    this.requireModel(modelId);
    requireCount('step', checkpoint.step);
    requireText('path', checkpoint.path);
    this.insertUnique('step', checkpoint.step, modelId, () =>
      this.statement(`INSERT INTO checkpoints (model_id, step, path, state, recorded_at) VALUES (?, ?, ?, ?, ?)`).run(
        modelId,
        checkpoint.step,
        checkpoint.path,
        toJson('state', checkpoint.state ?? null),
        timestamp(),
      ),
    );
  }

  /**
   * Deletes a model's steps, evaluations, routing rows and checkpoints after `step`, in one
   * transaction, and sets it back to `running` with its reason, diverged step and failed step
   * cleared. Resuming from a checkpoint at `step` calls this first, since the interrupted or failed
   * process may have recorded steps past its last checkpoint.
   */
  rewindModel(modelId: number, step: number): void {
    this.checkWritable();
    this.requireModel(modelId);
    requireCount('step', step);
    this.db.transaction(() => {
      for (const table of ['steps', 'evaluations', 'routing', 'checkpoints']) {
        this.statement(`DELETE FROM ${table} WHERE model_id = ? AND step > ?`).run(modelId, step);
      }
      this.statement(
        `UPDATE models SET status = 'running', reason = NULL, diverged_step = NULL, failed_after_step = NULL, finished_at = NULL, updated_at = ?
         WHERE id = ?`,
      ).run(
        timestamp(),
        modelId,
      );
    })();
  }

  /** Returns a model's steps in step order. */
  steps(modelId: number): StepRecord[] {
    return (this.statement(`SELECT * FROM steps WHERE model_id = ? ORDER BY step`).all(modelId) as Row[]).map(toStep);
  }

  /** Returns a model's evaluations in step order. */
  evaluations(modelId: number): EvaluationRecord[] {
    return (this.statement(`SELECT * FROM evaluations WHERE model_id = ? ORDER BY step`).all(modelId) as Row[]).map(toEvaluation);
  }

  /** Returns a model's routing rows in step order, then layer order. */
  routing(modelId: number): RoutingRecord[] {
    return (this.statement(`SELECT * FROM routing WHERE model_id = ? ORDER BY step, layer_index`).all(modelId) as Row[]).map(toRouting);
  }

  /** Returns a model's checkpoints in step order. */
  checkpoints(modelId: number): CheckpointRecord[] {
    return (this.statement(`SELECT * FROM checkpoints WHERE model_id = ? ORDER BY step`).all(modelId) as Row[]).map(toCheckpoint);
  }

  /** Returns a model's latest checkpoint, or undefined. */
  latestCheckpoint(modelId: number): CheckpointRecord | undefined {
    const row = this.statement(`SELECT * FROM checkpoints WHERE model_id = ? ORDER BY step DESC LIMIT 1`).get(modelId) as Row | undefined;
    return row && toCheckpoint(row);
  }

  /** Returns the last recorded step of a model, or undefined when it has none. */
  lastStep(modelId: number): StepRecord | undefined {
    const row = this.statement(`SELECT * FROM steps WHERE model_id = ? ORDER BY step DESC LIMIT 1`).get(modelId) as Row | undefined;
    return row && toStep(row);
  }

  /**
   * Runs a read-only SQL query, for exports and reports that need a join the readers lack.
   * `params` binds `?` placeholders (an array) or `@name` placeholders (an object). A statement
   * that would write raises a ResultsError.
   */
  query(sql: string, params: unknown[] | Record<string, unknown> = []): Row[] {
    const statement = this.db.prepare(sql);
    if (!statement.readonly) {
      throw new ResultsError('sql', sql, 'would write to the store', 'a read-only statement such as SELECT');
    }
    return (Array.isArray(params) ? statement.all(...params) : statement.all(params)) as Row[];
  }

  /** Returns the column names a read-only query gives, also when it matches no row (for CSV headers). */
  queryColumns(sql: string): string[] {
    const statement = this.db.prepare(sql);
    if (!statement.readonly) {
      throw new ResultsError('sql', sql, 'would write to the store', 'a read-only statement such as SELECT');
    }
    return statement.columns().map((column) => column.name);
  }

  // ---- internals ----

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Checks that the file is a run store this version reads, or empty; returns its schema version. */
  private checkSchema(): number {
    const version = this.schemaVersion();
    const tables = (this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as Row[]).map((row) => row.name);
    if (version > SCHEMA_VERSION) {
      throw new ResultsError('path', this.path, `has schema version ${version}, newer than this version reads`, `a store of schema version ${SCHEMA_VERSION} or older`);
    }
    if (version === 0 && tables.length > 0) {
      throw new ResultsError('path', this.path, 'is a SQLite file but not a moebench run store', this.readonly ? 'a run store file' : 'a run store file or a new path');
    }
    if (version === 0 && this.readonly) {
      throw new ResultsError('path', this.path, 'is an empty file, not a run store', 'a run store written by moebench');
    }
    return version;
  }

  private createSchema(): void {
    this.db.transaction(() => {
      this.db.exec(SCHEMA_SQL);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  /**
   * Migrates a store from schema version `from` to SCHEMA_VERSION, one version per transaction, so
   * an error leaves the file at the last version it fully reached. Foreign keys are off meanwhile
   * (see MIGRATIONS) and are checked before each commit.
   */
  private migrateSchema(from: number): void {
    // SQLite ignores this pragma inside a transaction, so it is set around the migrations.
    this.db.pragma('foreign_keys = OFF');
    try {
      for (let version = from; version < SCHEMA_VERSION; version++) {
        const script = MIGRATIONS[version];
        if (script === undefined) {
          throw new ResultsError('path', this.path, `has schema version ${version}, which this version cannot migrate`, `a store of schema version ${SCHEMA_VERSION}`);
        }
        this.db
          .transaction(() => {
            // Another process may have migrated the file since the version was read.
            if (this.schemaVersion() !== version) return;
            this.db.exec(script);
            const orphans = this.db.pragma('foreign_key_check') as Row[];
            if (orphans.length > 0) {
              throw new ResultsError(
                'path',
                this.path,
                `cannot be migrated from schema version ${version}: ${orphans.length} row(s) refer to a missing run or model, the first in table ${String(orphans[0].table)}`,
                'a run store whose rows all refer to stored runs and models',
              );
            }
            this.db.pragma(`user_version = ${version + 1}`);
          })
          .immediate();
      }
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }

  private checkWritable(): void {
    if (this.readonly) {
      throw new ResultsError('store', this.path, 'is open read-only', 'writes only on a store opened without { readonly: true }');
    }
  }

  private requireRun(runId: string): void {
    if (!this.statement(`SELECT 1 FROM runs WHERE id = ?`).get(runId)) {
      throw new ResultsError('runId', runId, 'is not a run in this store', 'the id of a run created by createRun');
    }
  }

  private requireModel(modelId: number): void {
    if (!this.statement(`SELECT 1 FROM models WHERE id = ?`).get(modelId)) {
      throw new ResultsError('modelId', modelId, 'is not a model in this store', 'the id of a model added by addModel');
    }
  }

  private freeRunId(base: string): string {
    let id = base;
    for (let n = 2; this.getRun(id); n++) id = `${base}-${n}`;
    return id;
  }

  private insertUnique(field: string, step: number, modelId: number, insert: () => void): void {
    try {
      insert();
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new ResultsError(field, step, `is already recorded for model ${modelId}`, 'a step not yet recorded (rewindModel clears steps after a checkpoint)');
      }
      throw error;
    }
  }
}

function openDatabase(path: string, readonly: boolean): Database.Database {
  let isDirectory = false;
  let exists = false;
  try {
    const stats = statSync(path);
    exists = true;
    isDirectory = stats.isDirectory();
  } catch {
    exists = false;
  }
  if (isDirectory) {
    throw new ResultsError('path', path, 'is a folder', 'a file path for the run store, for example runs/results.sqlite');
  }
  if (readonly && !exists) {
    throw new ResultsError('path', path, 'does not exist', 'the path of an existing run store');
  }
  if (!readonly) createParentFolders(path);

  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.prepare(`SELECT count(*) FROM sqlite_master`).get();
  } catch (error) {
    const message = (error as Error).message;
    if (/not a database|file is encrypted/.test(message)) {
      throw new ResultsError('path', path, 'is not a SQLite file', readonly ? 'a run store written by moebench' : 'a run store written by moebench, or a new path');
    }
    throw new ResultsError('path', path, `cannot be opened (${message})`, readonly ? 'a readable run store path' : 'a run store path in a writable folder');
  }
  return db;
}

/** Creates the folders above `path`, naming the ancestor that is a file when one is in the way. */
function createParentFolders(path: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const allowed = 'a file path whose folders exist or can be created, for example runs/results.sqlite';
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      let ancestor = dirname(path);
      while (dirname(ancestor) !== ancestor && !isFile(ancestor)) ancestor = dirname(ancestor);
      throw new ResultsError('path', path, `cannot be created: ${JSON.stringify(ancestor)} is a file, not a folder`, allowed);
    }
    throw new ResultsError('path', path, `cannot be created (${code ?? (error as Error).message})`, allowed);
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** JSON text of `value`, or a ResultsError naming `field` when JSON cannot hold it (a cycle, a BigInt). */
function toJson(field: string, value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new ResultsError(field, (error as Error).message.split('\n')[0], 'cannot be stored as JSON', 'plain JSON data: objects, arrays, strings, numbers, booleans and null');
  }
}

function timestamp(): string {
  return new Date().toISOString();
}

function requireText(field: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ResultsError(field, value, 'must be a non-empty string', 'a non-empty string');
  }
}

function requireCount(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ResultsError(field, value, 'must be a non-negative integer', 'an integer >= 0');
  }
}

function requireNonNegative(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ResultsError(field, value, 'must be a finite number >= 0', 'a finite number >= 0');
  }
}

function requireFinite(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ResultsError(field, value, 'must be a finite number', 'a finite number');
  }
}

/** A measured value that may be NaN or infinite (a diverged loss): stored as it is, NaN as null. */
function requireNumber(field: string, value: unknown): void {
  if (typeof value !== 'number') {
    throw new ResultsError(field, value, 'must be a number', 'a number (NaN or Infinity for a diverged step)');
  }
}

function requireFraction(field: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ResultsError(field, value, 'must be a number in [0, 1]', 'a number in [0, 1]');
  }
}

function requireCounts(field: string, value: unknown): void {
  if (!Array.isArray(value)) {
    throw new ResultsError(field, toJsonOrText(value), 'must be an array of counts', 'an array with one count per expert');
  }
  value.forEach((count, index) => requireNonNegative(`${field}[${index}]`, count));
}

function toJsonOrText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function requireOneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new ResultsError(field, value, 'is not a valid status', `one of ${allowed.join(', ')}`);
  }
}

function toRun(row: Row): RunRecord {
  return {
    id: row.id as string,
    suite: row.suite as string,
    manifest: JSON.parse(row.manifest as string) as RunManifest,
    configHash: row.config_hash as string,
    status: row.status as RunStatus,
    error: row.error as string | null,
    startedAt: row.started_at as string,
    updatedAt: row.updated_at as string,
    finishedAt: row.finished_at as string | null,
  };
}

function toModel(row: Row): ModelRecord {
  return {
    id: row.id as number,
    runId: row.run_id as string,
    name: row.name as string,
    architecture: row.architecture as string,
    config: JSON.parse(row.config as string),
    totalParameters: row.total_parameters as number,
    activeParametersPerToken: row.active_parameters_per_token as number,
    forwardFlopsPerToken: row.forward_flops_per_token as number,
    status: row.status as ModelStatus,
    reason: row.reason as string | null,
    divergedStep: row.diverged_step as number | null,
    // A store of schema version 1, read without migrating, has no failed_after_step column.
    failedAfterStep: (row.failed_after_step ?? null) as number | null,
    startedAt: row.started_at as string,
    updatedAt: row.updated_at as string,
    finishedAt: row.finished_at as string | null,
  };
}

function toStep(row: Row): StepRecord {
  return {
    modelId: row.model_id as number,
    step: row.step as number,
    loss: row.loss as number | null,
    auxLoss: row.aux_loss as number | null,
    lr: row.lr as number,
    gradNorm: row.grad_norm as number | null,
    tokensSeen: row.tokens_seen as number,
    tokensPerSecond: row.tokens_per_second as number,
    trainingSeconds: row.training_seconds as number,
    recordedAt: row.recorded_at as string,
  };
}

function toEvaluation(row: Row): EvaluationRecord {
  return {
    modelId: row.model_id as number,
    step: row.step as number,
    tokensSeen: row.tokens_seen as number,
    trainingSeconds: row.training_seconds as number,
    evalSeconds: row.eval_seconds as number,
    valLoss: row.val_loss as number | null,
    perplexity: row.perplexity as number | null,
    bitsPerByte: row.bits_per_byte as number | null,
    recordedAt: row.recorded_at as string,
    // A store of schema version 2 or older, read without migrating, has no per-position columns.
    positionLossSums: parseJsonColumn(row.position_loss_sums) as Array<number | null> | null,
    positionCounts: parseJsonColumn(row.position_counts) as number[] | null,
  };
}

function parseJsonColumn(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : null;
}

/**
 * Checks the per-position figures of an evaluation and returns them as JSON text for their columns
 * (a non-finite sum as null), or two nulls when both are absent.
 */
function positionColumns(sums: unknown, counts: unknown): { sums: string | null; counts: string | null } {
  if (sums === undefined && counts === undefined) return { sums: null, counts: null };
  const allowed = 'both positionLossSums and positionCounts, arrays of equal non-zero length, or neither';
  if (!Array.isArray(sums) || !Array.isArray(counts)) {
    const missing = !Array.isArray(sums) ? 'positionLossSums' : 'positionCounts';
    const value = !Array.isArray(sums) ? sums : counts;
    throw new ResultsError(missing, typeof value === 'object' && value !== null ? toJsonOrText(value) : value, 'must be an array when the other per-position field is given', allowed);
  }
  if (sums.length === 0 || sums.length !== counts.length) {
    throw new ResultsError('positionLossSums', `${sums.length} entries`, `must have one entry per position, as positionCounts has ${counts.length}`, allowed);
  }
  sums.forEach((sum, index) => requireNumber(`positionLossSums[${index}]`, sum));
  counts.forEach((count, index) => requireCount(`positionCounts[${index}]`, count));
  return { sums: JSON.stringify(sums), counts: JSON.stringify(counts) };
}

function toRouting(row: Row): RoutingRecord {
  return {
    modelId: row.model_id as number,
    step: row.step as number,
    layerIndex: row.layer_index as number,
    layer: row.layer as string,
    tokensPerExpert: JSON.parse(row.tokens_per_expert as string) as number[],
    keptPerExpert: JSON.parse(row.kept_per_expert as string) as number[],
    droppedFraction: row.dropped_fraction as number,
    routerEntropy: row.router_entropy as number | null,
    maxOverMeanLoad: row.max_over_mean_load as number,
    idleExperts: row.idle_experts as number,
    extra: JSON.parse(row.extra as string) as Record<string, number>,
  };
}

function toCheckpoint(row: Row): CheckpointRecord {
  return {
    modelId: row.model_id as number,
    step: row.step as number,
    path: row.path as string,
    state: JSON.parse(row.state as string),
    recordedAt: row.recorded_at as string,
  };
}

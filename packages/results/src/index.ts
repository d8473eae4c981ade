export { MODEL_STATUSES, RUN_STATUSES, SCHEMA_VERSION, type ModelStatus, type RunStatus } from './schema.js';
export { ResultsStore, openStore, type CreateRunInput, type OpenStoreOptions } from './store.js';
export type {
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
export {
  EXPORT_FORMATS,
  EXPORT_TABLES,
  exportRows,
  exportRun,
  exportTable,
  toCsv,
  toJsonLines,
  type ExportFormat,
  type ExportTable,
} from './export.js';
export { canonicalJson, hashConfig } from './config-hash.js';
export { ResultsError } from './errors.js';
export { FolderLockedError, LOCK_FILE, LOCK_HOLDER_FILE, isFolderLocked, lockFolder, readHolder, type FolderLock, type LockHolder } from './lock.js';

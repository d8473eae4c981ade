import Database from 'better-sqlite3';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

/** Name of the file whose SQLite exclusive lock marks a folder as in use. */
export const LOCK_FILE = 'run.lock';
/** Name of the file next to the lock that describes the process holding it. */
export const LOCK_HOLDER_FILE = 'run.lock.json';

/** The process that holds, or last held, a folder lock. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601 time (UTC) at which the process took the lock. */
  startedAt: string;
  /** Command line of the process, for example `moebench run --resume runs/quick`. */
  command: string;
}

/** A folder lock held by this process. */
export interface FolderLock {
  /** The locked folder, absolute. */
  folder: string;
  /**
   * Previous holder, which ended without releasing the lock (for example killed with SIGKILL), so
   * this process took the lock over. Null when no process had left the lock behind.
   */
  takenOverFrom: LockHolder | null;
  /** Releases the lock; calling it again does nothing. */
  release(): void;
}

/** A folder lock that another live process holds. */
export class FolderLockedError extends Error {
  /** The locked folder, absolute. */
  readonly folder: string;
  /** The holding process, or null when it has not written its details yet. */
  readonly holder: LockHolder | null;

  constructor(folder: string, holder: LockHolder | null) {
    const holderText =
      holder === null
        ? 'another process, which has not written its details yet'
        : `process ${holder.pid} on ${holder.host}, started at ${holder.startedAt} (${holder.command})`;
    super(`${folder} is in use by ${holderText}. Wait for that process to end or stop it, then try again.`);
    this.name = 'FolderLockedError';
    this.folder = folder;
    this.holder = holder;
  }
}

/**
 * Takes the lock of `folder`, which must exist and be writable, for this process, or raises
 * FolderLockedError naming the process that holds it.
 *
 * The lock is SQLite's exclusive lock on `folder/run.lock`, an advisory file lock that the operating
 * system takes atomically and drops when the holding process ends in any way, SIGKILL included. So a
 * lock left by a dead process is free again, and a reused process id cannot make a dead holder look
 * alive. The holder's details go to `folder/run.lock.json`, which `release` removes. When that file
 * is still there as the lock is taken, its process ended without releasing the lock, and the lock
 * reports it in `takenOverFrom`.
 *
 * NOTE: on a network file system the lock is only as reliable as its support for POSIX file locks.
 *
 * @param command what the process does, shown to a process that finds the folder locked.
 * @throws FolderLockedError when a live process holds the lock.
 * @throws the file system's error when the lock file cannot be opened or the holder file cannot be written.
 */
export function lockFolder(folder: string, command: string): FolderLock {
  const absolute = resolve(folder);
  const lockPath = join(absolute, LOCK_FILE);
  const holderPath = join(absolute, LOCK_HOLDER_FILE);
  // A short wait rides out `isFolderLocked`, which takes the lock for an instant; a live holder keeps it.
  const database = new Database(lockPath, { timeout: 250 });
  try {
    // The lock file never holds data, so its rollback journal stays in memory instead of a second file.
    database.pragma('journal_mode = MEMORY');
    database.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    database.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new FolderLockedError(absolute, readHolder(holderPath));
    throw error;
  }

  const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command };
  let takenOverFrom: LockHolder | null;
  try {
    takenOverFrom = readHolder(holderPath);
    // The holder file is replaced in one rename, so a process that finds the folder locked never reads half of it.
    const temporary = `${holderPath}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(holder, null, 2)}\n`);
    renameSync(temporary, holderPath);
  } catch (error) {
    database.close();
    throw error;
  }

  let released = false;
  return {
    folder: absolute,
    takenOverFrom,
    release() {
      if (released) return;
      released = true;
      try {
        rmSync(holderPath, { force: true });
      } finally {
        // Closing ends the transaction, which drops the file lock.
        database.close();
      }
    },
  };
}

/**
 * Tells whether a live process holds the lock of `folder`, without taking it and without touching
 * the holder file (so a dead holder's record stays for the next `lockFolder` to report). False when
 * the folder has no lock file.
 */
export function isFolderLocked(folder: string): boolean {
  const lockPath = join(resolve(folder), LOCK_FILE);
  if (!existsSync(lockPath)) return false;
  const database = new Database(lockPath, { timeout: 0, fileMustExist: true });
  try {
    database.pragma('journal_mode = MEMORY');
    database.exec('BEGIN EXCLUSIVE');
    database.exec('ROLLBACK');
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return true;
    throw error;
  } finally {
    database.close();
  }
}

/** Reads the holder file of a folder lock; null when it is missing or unreadable. */
export function readHolder(holderPath: string): LockHolder | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(holderPath, 'utf8'));
  } catch {
    return null;
  }
  const candidate = parsed as Partial<LockHolder> | null;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.pid !== 'number' ||
    typeof candidate.host !== 'string' ||
    typeof candidate.startedAt !== 'string' ||
    typeof candidate.command !== 'string'
  ) {
    return null;
  }
  return { pid: candidate.pid, host: candidate.host, startedAt: candidate.startedAt, command: candidate.command };
}

import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file with that name exists',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  ENAMETOOLONG: 'the path is too long',
};

/**
 * Rewrites a file-system error as a sentence naming the path, the attempted operation and the fix.
 * An example: `cannot create the run folder /data/runs/a (permission denied, EACCES); choose another
 * --out or make its parent folder writable.` An error without a Node.js error code keeps its message.
 */
export function describeFileError(error: unknown, attempt: string, path: string, fix: string): Error {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error instanceof Error ? error : new Error(String(error));
  const cause = CAUSES[code] ?? (error as Error).message;
  return new Error(`cannot ${attempt} ${path} (${cause}, ${code}); ${fix}.`, { cause: error });
}

/**
 * Creates `folder` with its parents when missing and checks that a file can be written in it, by
 * writing and removing one, so that a run or report fails here instead of after its work.
 *
 * @param role the folder's role in messages, for example `the run folder`.
 * @param fix what the user can do, for example `choose another --out`.
 * @returns true when this call created the folder.
 * @throws Error naming the folder, what was attempted and what to do.
 */
export function prepareWritableFolder(folder: string, role: string, fix: string): boolean {
  const existed = existsSync(folder);
  if (existed && !statSync(folder).isDirectory()) {
    throw new Error(`${role} ${folder} is a file; ${fix}, or remove the file.`);
  }
  if (!existed) {
    try {
      mkdirSync(folder, { recursive: true });
    } catch (error) {
      throw describeFileError(error, `create ${role}`, folder, `${fix} or make its parent folder writable`);
    }
  }
  const probe = join(folder, `.moebench-write-check-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (error) {
    throw describeFileError(error, `write in ${role}`, folder, `${fix} or make the folder writable`);
  }
  return !existed;
}

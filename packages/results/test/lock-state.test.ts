import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isFolderLocked, LOCK_HOLDER_FILE, lockFolder } from '../src/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-lock-state-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

/** Starts a process that takes the lock the way lockFolder does and prints "locked" once it holds it. */
function holdInChild(folder: string): Promise<ReturnType<typeof spawn>> {
  const script = `
    const Database = require('better-sqlite3');
    const database = new Database(${JSON.stringify(join(folder, 'run.lock'))}, { timeout: 0 });
    database.pragma('journal_mode = MEMORY');
    database.exec('BEGIN EXCLUSIVE');
    require('node:fs').writeFileSync(${JSON.stringify(join(folder, LOCK_HOLDER_FILE))}, JSON.stringify({ pid: process.pid, host: 'child', startedAt: 'now', command: 'hold' }));
    process.stdout.write('locked\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['-e', script], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`the lock holder exited with code ${code} before taking the lock`)));
  });
}

function exited(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

describe('isFolderLocked', () => {
  it('is false for a folder without a lock file', () => {
    const folder = mkdtempSync(join(scratch, 'none-'));
    expect(isFolderLocked(folder)).toBe(false);
    expect(existsSync(join(folder, 'run.lock'))).toBe(false);
  });

  it('follows a lock this process takes and releases', () => {
    const folder = mkdtempSync(join(scratch, 'own-'));
    const lock = lockFolder(folder, 'test');
    expect(isFolderLocked(folder)).toBe(true);
    lock.release();
    expect(isFolderLocked(folder)).toBe(false);
  });

  it('tracks a holder process and its death', async () => {
    const folder = mkdtempSync(join(scratch, 'child-'));
    const child = await holdInChild(folder);
    expect(isFolderLocked(folder)).toBe(true);
    const childExit = exited(child);
    child.kill('SIGKILL');
    await childExit;
    expect(isFolderLocked(folder)).toBe(false);
    // The dead holder's record is left for lockFolder to report as taken over.
    expect(existsSync(join(folder, LOCK_HOLDER_FILE))).toBe(true);
    const lock = lockFolder(folder, 'next');
    expect(lock.takenOverFrom?.command).toBe('hold');
    lock.release();
  });
});

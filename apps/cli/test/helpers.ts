import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore, type ResultsStore } from '@moebench/results';

/** The built CLI; the root test script builds it before vitest runs. */
export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What a finished CLI process printed and how it ended. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of `runCli`. */
export interface CliOptions {
  /** Node.js options placed before the CLI path, for example `['--import', file]`. Default: none. */
  nodeArgs?: string[];
  /** Variables added to the child's environment. Default: none. */
  env?: Record<string, string>;
}

/**
 * Runs the CLI with `args`. When `onOutput` is given, it receives stdout as it grows and may signal
 * the child, for the interruption tests.
 */
export function runCli(args: string[], onOutput?: (stdout: string, child: ChildProcess) => void, options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput?.(stdout, child);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Opens the run store of `runDir` read-only and passes it `read` with the id of its latest run. */
export function withStore<T>(runDir: string, read: (store: ResultsStore, runId: string) => T): T {
  const store = openStore(join(runDir, 'store.sqlite'), { readonly: true });
  try {
    const run = store.latestRun();
    if (run === undefined) throw new Error(`no run in ${runDir}`);
    return read(store, run.id);
  } finally {
    store.close();
  }
}

/**
 * Returns a `runCli` output callback that sends `signals`, in order, the first time stdout contains
 * `marker`, and never again.
 */
export function signalAt(marker: string, ...signals: NodeJS.Signals[]): (stdout: string, child: ChildProcess) => void {
  let sent = false;
  return (stdout, child) => {
    if (sent || !stdout.includes(marker)) return;
    sent = true;
    for (const signal of signals) child.kill(signal);
  };
}

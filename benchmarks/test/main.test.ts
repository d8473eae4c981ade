import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The built entry point (`pnpm test` builds the workspace first).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function bench(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('pnpm bench settings checked before any work', () => {
  it.each([
    [{ MOEBENCH_NATIVE_THREADS: '100' }, 'MOEBENCH_NATIVE_THREADS must be an integer from 1 to 64, received "100"'],
    [{ MOEBENCH_FUSED_KERNELS: 'false' }, 'MOEBENCH_FUSED_KERNELS must be 0 or 1 (or unset), received "false"'],
    [{ MOEBENCH_STOCK_KERNELS: 'yes' }, 'MOEBENCH_STOCK_KERNELS must be 0 or 1 (or unset), received "yes"'],
  ])('rejects %j with exit code 2', (env, message) => {
    const run = bench(['--filter', 'dense-ffn', '--variants', 'wasm'], env);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('pnpm bench: dense-ffn');
    expect(run.status).toBe(2);
  });

  it('names a requested variant a case does not run on', () => {
    const out = join(tmpdir(), `moebench-bench-main-${process.pid}.json`);
    const run = bench(['--filter', 'train-step-gmlp', '--variants', 'wasm-stock', '--out', out]);
    expect(run.stdout).toContain('not run:\n  train-step-gmlp on wasm-stock: the case runs only on wasm-native, wasm-blas, wasm, tensorflow');
    expect(run.status).toBe(0);
  });

  it('rejects an --out inside a file', () => {
    const file = join(tmpdir(), `moebench-bench-main-${process.pid}`);
    writeFileSync(file, '');
    const run = bench(['--filter', 'dense-ffn', '--variants', 'wasm', '--out', join(file, 'results.json')]);
    expect(run.stderr).toMatch(/^--out: cannot create the folder of /m);
    expect(run.stdout).toBe('');
    expect(run.status).toBe(2);
  });
});

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/build-native.mjs', import.meta.url));

/** Runs the install script with extra environment and returns its output lines (it must exit 0). */
function runBuild(env: Record<string, string>): string[] {
  const output = execFileSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return output.trim().split('\n');
}

describe('native kernel install script', () => {
  it('skips with one line when asked to', () => {
    expect(runBuild({ MOEBENCH_SKIP_NATIVE: '1' })).toEqual([
      '@moebench/backend: native kernels skipped (MOEBENCH_SKIP_NATIVE=1); the wasm kernels will be used.',
    ]);
  });

  it('skips with one line when no compiler exists', () => {
    const lines = runBuild({ MOEBENCH_SKIP_NATIVE: '0', CC: 'moebench-no-such-compiler' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/native kernels skipped \(no C compiler: "moebench-no-such-compiler --version" failed/);
  });
});

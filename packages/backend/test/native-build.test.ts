import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));

/**
 * A copy of the package's install script and C sources in a temporary folder: the script builds
 * next to itself, and a skip removes the addon there, which must not touch the addon the other
 * tests load.
 */
let copyRoot = '';
beforeAll(() => {
  copyRoot = mkdtempSync(join(tmpdir(), 'moebench-native-build-'));
  mkdirSync(join(copyRoot, 'scripts'));
  mkdirSync(join(copyRoot, 'native', 'build'), { recursive: true });
  copyFileSync(join(packageRoot, 'scripts', 'build-native.mjs'), join(copyRoot, 'scripts', 'build-native.mjs'));
  for (const name of readdirSync(join(packageRoot, 'native'))) {
    if (name.endsWith('.c') || name.endsWith('.h')) copyFileSync(join(packageRoot, 'native', name), join(copyRoot, 'native', name));
  }
});
afterAll(() => rmSync(copyRoot, { recursive: true, force: true }));

/** Runs the copied install script with extra environment and returns its output lines (it must exit 0). */
function runBuild(env: Record<string, string>): string[] {
  const output = execFileSync(process.execPath, [join(copyRoot, 'scripts', 'build-native.mjs')], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
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

  it.each([
    [{ OPENBLAS_INCLUDE: '/moebench/no-such-folder' }, 'OPENBLAS_INCLUDE=/moebench/no-such-folder contains no cblas.h'],
    [{ NODE_INCLUDE: '/moebench/no-such-folder' }, 'NODE_INCLUDE=/moebench/no-such-folder contains no node_api.h'],
    [{ OPENBLAS_LIB: '/moebench/no-such-folder' }, 'OPENBLAS_LIB=/moebench/no-such-folder does not exist'],
  ])('skips when %j names a missing folder', (env, reason) => {
    const lines = runBuild({ MOEBENCH_SKIP_NATIVE: '0', ...env });
    expect(lines).toEqual([`@moebench/backend: native kernels skipped (${reason}); the wasm kernels will be used.`]);
  });

  it('removes an addon left from an earlier build when it skips', () => {
    const addon = join(copyRoot, 'native', 'build', 'moebench_blas.node');
    writeFileSync(addon, 'stale');
    runBuild({ MOEBENCH_SKIP_NATIVE: '0', CC: 'moebench-no-such-compiler' });
    expect(existsSync(addon)).toBe(false);
  });
});

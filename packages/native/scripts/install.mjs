#!/usr/bin/env node
/**
 * The package's install step: builds the OpenBLAS addon with node-gyp when a C++ compiler and
 * OpenBLAS (cblas.h and libopenblas) are present. When one is missing, or the build fails, it prints
 * one line saying the native kernels were skipped and why, and exits 0: the addon is optional, and
 * moebench then runs on its pure wasm kernels. A skip also removes an addon left by an earlier
 * build. The full build log goes to build/install.log.
 *
 * Run by hand with `pnpm --filter @moebench/native run build:native`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const prefix = '@moebench/native:';

function skip(reason) {
  // A build left from an earlier install would otherwise still load, contradicting this line.
  rmSync(join(packageDir, 'build', 'Release', 'moebench_native.node'), { force: true });
  console.log(`${prefix} native kernels skipped: ${reason}; moebench will use its wasm kernels.`);
  process.exit(0);
}

const compiler = process.env.CXX ?? 'c++';
try {
  execFileSync(compiler, ['--version'], { stdio: 'ignore' });
} catch {
  skip(`no C++ compiler (\`${compiler} --version\` failed; install g++ or set CXX)`);
}

// Compile and link a one-line sgemm call: that finds both the header and the library.
const probeDir = mkdtempSync(join(tmpdir(), 'moebench-native-'));
try {
  const source = join(probeDir, 'probe.cc');
  writeFileSync(
    source,
    '#include <cblas.h>\nint main() { float a = 1, b = 1, c = 0;\n' +
      '  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);\n' +
      '  return c == 1.0f ? 0 : 1; }\n',
  );
  const probe = spawnSync(compiler, [source, '-o', join(probeDir, 'probe'), '-lopenblas'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const missingHeader = /cblas\.h/.test(probe.stderr ?? '');
    skip(
      missingHeader
        ? 'OpenBLAS headers not found (cblas.h; on Debian or Ubuntu: apt-get install libopenblas-dev)'
        : 'OpenBLAS library not found (-lopenblas failed to link; on Debian or Ubuntu: apt-get install libopenblas-dev)',
    );
  }
} finally {
  rmSync(probeDir, { recursive: true, force: true });
}

const nodePrefix = dirname(dirname(process.execPath));
const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) skip('node-gyp not found (it ships with npm and pnpm; set npm_config_node_gyp to its bin/node-gyp.js)');

const args = [nodeGyp, 'rebuild'];
// Run by hand, node-gyp would download Node's headers; use the installed ones when they exist.
if (process.env.npm_config_nodedir === undefined && existsSync(join(nodePrefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${nodePrefix}`);
}
const build = spawnSync(process.execPath, args, { cwd: packageDir, encoding: 'utf8' });
const log = `${build.stdout ?? ''}${build.stderr ?? ''}`;
mkdirSync(join(packageDir, 'build'), { recursive: true });
writeFileSync(join(packageDir, 'build', 'install.log'), log);
if (build.status !== 0) {
  const errorLine = log.split('\n').find((line) => /error/i.test(line)) ?? `node-gyp exited with ${build.status}`;
  skip(`node-gyp build failed (${errorLine.trim()}; log in packages/native/build/install.log)`);
}
console.log(`${prefix} native kernels built over OpenBLAS (build/Release/moebench_native.node).`);

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(nodePrefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(nodePrefix, 'lib', 'node_modules', 'pnpm', 'dist', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((candidate) => candidate !== undefined && existsSync(candidate));
}

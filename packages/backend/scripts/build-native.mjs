#!/usr/bin/env node
/**
 * Builds moebench's native kernels (the C files in native/, an N-API addon over OpenBLAS) into
 * native/build/moebench_blas.node, optimised for the processor it is built on (-march=native). Runs
 * as the package's install script. A missing compiler, Node
 * header or OpenBLAS is not an error: the script prints one line saying the native kernels were
 * skipped and why, and the wasm kernels are used instead. Set MOEBENCH_SKIP_NATIVE=1 to skip.
 *
 * Environment: CC (default cc), OPENBLAS_INCLUDE (directory of cblas.h), OPENBLAS_LIB (directory
 * of libopenblas), NODE_INCLUDE (directory of node_api.h), MOEBENCH_NATIVE_MARCH (the -march value,
 * default native; empty leaves -march out).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const nativeDirectory = join(root, 'native');
const source = join(nativeDirectory, 'moebench_blas.c');
const output = join(root, 'native', 'build', 'moebench_blas.node');

function skip(reason) {
  // An addon left from an earlier build would still load, contrary to the message below.
  rmSync(output, { force: true });
  console.log(`@moebench/backend: native kernels skipped (${reason}); the wasm kernels will be used.`);
  process.exit(0);
}

// A folder named by its environment variable is used alone: falling back to the system's copy would
// build against other headers than the ones requested.
function findDirectory(envName, candidates, file) {
  const fromEnv = process.env[envName];
  if (fromEnv) {
    if (!existsSync(join(fromEnv, file))) skip(`${envName}=${fromEnv} contains no ${file}`);
    return fromEnv;
  }
  return candidates.find((directory) => existsSync(join(directory, file)));
}

if (process.env.MOEBENCH_SKIP_NATIVE === '1') skip('MOEBENCH_SKIP_NATIVE=1');
if (!existsSync(source)) skip(`${source} is missing`);

const compiler = process.env.CC ?? 'cc';
try {
  execFileSync(compiler, ['--version'], { stdio: 'ignore' });
} catch {
  skip(`no C compiler: "${compiler} --version" failed; install gcc or set CC`);
}

const nodeInclude = findDirectory(
  'NODE_INCLUDE',
  [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'],
  'node_api.h',
);
if (nodeInclude === undefined) skip('node_api.h not found; set NODE_INCLUDE to the Node headers directory');

const blasInclude = findDirectory(
  'OPENBLAS_INCLUDE',
  [
    '/usr/include/x86_64-linux-gnu/openblas-pthread',
    '/usr/include/aarch64-linux-gnu/openblas-pthread',
    '/usr/include/openblas',
    '/usr/local/include/openblas',
    '/opt/homebrew/opt/openblas/include',
    '/usr/local/opt/openblas/include',
    '/usr/include',
    '/usr/local/include',
  ],
  'cblas.h',
);
if (blasInclude === undefined) skip('cblas.h not found; install libopenblas-dev or set OPENBLAS_INCLUDE');

// The addon is built where it runs (this is an install script), so it may use every instruction the
// processor has. -fno-math-errno lets the compiler vectorise loops that call sqrtf.
const args = ['-O3', '-std=c11', '-D_POSIX_C_SOURCE=200809L', '-fno-math-errno', '-shared', '-fPIC', '-pthread'];
if (process.env.MOEBENCH_NATIVE_MARCH !== '') args.push(`-march=${process.env.MOEBENCH_NATIVE_MARCH ?? 'native'}`);
args.push('-DNODE_GYP_MODULE_NAME=moebench_blas', `-I${nodeInclude}`, `-I${blasInclude}`);
if (process.env.OPENBLAS_LIB && !existsSync(process.env.OPENBLAS_LIB)) skip(`OPENBLAS_LIB=${process.env.OPENBLAS_LIB} does not exist`);
if (process.env.OPENBLAS_LIB) args.push(`-L${process.env.OPENBLAS_LIB}`, `-Wl,-rpath,${process.env.OPENBLAS_LIB}`);
if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
const sources = readdirSync(nativeDirectory)
  .filter((name) => name.endsWith('.c'))
  .sort()
  .map((name) => join(nativeDirectory, name));
args.push(...sources, '-lopenblas', '-lm', '-o', output);

mkdirSync(dirname(output), { recursive: true });
try {
  execFileSync(compiler, args, { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (error) {
  const stderr = String(error.stderr ?? error.message).trim().split('\n')[0];
  skip(`compiling failed: ${stderr}`);
}
console.log(`@moebench/backend: native kernels built (${output}).`);

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { initBackend, tf, wasmKernelState } from '../src/index.js';
import { loadNativeKernels } from '../src/kernels/native.js';
import { expectWasmMatchesCpu, values } from './compare.js';

const nativeAvailable = (await initBackend('wasm')) && wasmKernelState().nativeStatus.available;
const addon = loadNativeKernels().blas;

/** A product large enough for the pool to split it: [300, 64] x [64, 200], 3.8M multiply-adds. */
const build = () => tf.matMul(tf.tensor(values(300 * 64, 21), [300, 64]), tf.tensor(values(64 * 200, 22), [64, 200]));

/**
 * Restarts the pool 300 times with 1 to 4 threads, and after each restart calls sgemmBatch,
 * layerNormForward and geluForward on a plain ArrayBuffer, a different one first each round, so that
 * the first call reaches the pool before its new workers run. Every round must reproduce the first
 * round's results bit for bit: the layer norm and GELU compute each row or element on one thread
 * whatever the count, and the product of ones is exact (every value k). Runs in a child process: a job
 * that never reaches a new worker blocks the JavaScript thread, which a test timeout in this process
 * could not interrupt.
 */
const RESTART_SCRIPT = `
const addon = require(process.argv[1]);
const m = 256, n = 256, k = 64;
const rows = 1000, columns = 264, geluCount = 200000;
const layout = { a: 0, b: m * k, product: m * k + k * n };
layout.x = layout.product + m * n;
layout.gamma = layout.x + rows * columns;
layout.beta = layout.gamma + columns;
layout.y = layout.beta + columns;
layout.mean = layout.y + rows * columns;
layout.inverseStd = layout.mean + rows;
layout.geluX = layout.inverseStd + rows;
layout.geluY = layout.geluX + geluCount;
const heap = new ArrayBuffer((layout.geluY + geluCount) * 4);
const floats = new Float32Array(heap);
floats.fill(1, 0, layout.product);
for (let i = 0; i < rows * columns; i++) floats[layout.x + i] = ((i * 7919) % 1009) / 101 - 5;
floats.fill(1, layout.gamma, layout.beta);
for (let i = 0; i < geluCount; i++) floats[layout.geluX + i] = ((i * 104729) % 2003) / 200 - 5;

const kernels = [
  () => {
    floats.fill(0, layout.product, layout.x);
    addon.sgemmBatch(heap, false, false, m, n, k, Uint32Array.of(layout.a), Uint32Array.of(layout.b), layout.product);
    return floats.slice(layout.product, layout.x);
  },
  () => {
    floats.fill(0, layout.y, layout.geluX);
    addon.layerNormForward(heap, 1, rows, columns, 1e-5, layout.x, layout.gamma, layout.beta, layout.y, layout.mean, layout.inverseStd);
    return floats.slice(layout.y, layout.geluX);
  },
  () => {
    floats.fill(0, layout.geluY, layout.geluY + geluCount);
    addon.geluForward(heap, layout.geluX, layout.geluY, geluCount);
    return floats.slice(layout.geluY, layout.geluY + geluCount);
  },
];
const names = ['sgemmBatch', 'layerNormForward', 'geluForward'];
let expected;
for (let round = 0; round < 300; round++) {
  addon.setThreads(1 + (round % 4));
  const first = round % kernels.length;
  const results = [];
  for (let i = 0; i < kernels.length; i++) {
    const kernel = (first + i) % kernels.length;
    results[kernel] = kernels[kernel]();
  }
  expected ??= results;
  results.forEach((result, kernel) => {
    const index = result.findIndex((value, i) => !Object.is(value, expected[kernel][i]));
    if (index >= 0) throw new Error(names[kernel] + ' round ' + round + ': value ' + index + ' is ' + result[index] + ', expected ' + expected[kernel][index]);
  });
}
if (!expected[0].every((value) => value === k)) throw new Error('sgemmBatch: the product of ones is not ' + k);
if (!expected[1].some((value) => value !== 0) || !expected[2].some((value) => value !== 0)) throw new Error('a kernel wrote no output');
`;

describe.runIf(nativeAvailable)('native thread pool', () => {
  it('reaches workers started just before a job', () => {
    const addonPath = fileURLToPath(new URL('../native/build/moebench_blas.node', import.meta.url));
    const child = spawnSync(process.execPath, ['-e', RESTART_SCRIPT, addonPath], { encoding: 'utf8', timeout: 90_000 });
    expect(child.error, 'the child timed out: a job did not reach a new worker').toBeUndefined();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
  });

  it('matches cpu after each change of thread count', async () => {
    const before = addon!.getThreads();
    try {
      for (const threads of [3, 2, 4, 1, 3]) {
        addon!.setThreads(threads);
        expect(addon!.getThreads()).toBe(threads);
        await expectWasmMatchesCpu(build, 1e-4);
      }
    } finally {
      addon!.setThreads(before);
    }
  });

  it('rejects a thread count outside 1 to 64', () => {
    expect(() => addon!.setThreads(0)).toThrow(/1 to 64/);
    expect(() => addon!.setThreads(65)).toThrow(/1 to 64/);
  });
});

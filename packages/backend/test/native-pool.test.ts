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
 * Restarts the pool and calls sgemmBatch at once, 300 times, on a plain ArrayBuffer. Runs in a child
 * process: a job that never reaches a new worker blocks the JavaScript thread, which a test timeout
 * in this process could not interrupt.
 */
const RESTART_SCRIPT = `
const addon = require(process.argv[1]);
const m = 256, n = 256, k = 64;
const heap = new ArrayBuffer((m * k + k * n + m * n) * 4);
new Float32Array(heap).fill(1);
for (let round = 0; round < 300; round++) {
  addon.setThreads(2 + (round % 3));
  addon.sgemmBatch(heap, false, false, m, n, k, Uint32Array.of(0), Uint32Array.of(m * k), m * k + k * n);
}
const product = new Float32Array(heap, (m * k + k * n) * 4, m * n);
if (!product.every((value) => value === k)) throw new Error('wrong product');
`;

describe.runIf(nativeAvailable)('native thread pool', () => {
  it('reaches workers started just before a job', () => {
    const addonPath = fileURLToPath(new URL('../native/build/moebench_blas.node', import.meta.url));
    const child = spawnSync(process.execPath, ['-e', RESTART_SCRIPT, addonPath], { encoding: 'utf8', timeout: 30_000 });
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

import type { BackendDescription } from '@moebench/backend';

/**
 * Builds a `describeBackend()` result for the wasm backend, for table tests that need one without
 * starting a backend. `nativeThreads` is the native kernels' thread count, absent when the addon did
 * not load.
 */
export function wasmBackendDescription(nativeThreads?: number): BackendDescription {
  const nativeLoaded = nativeThreads !== undefined;
  return {
    backend: 'wasm',
    tfjsVersion: '4.22.0',
    wasm: {
      version: '4.22.0',
      simd: true,
      multithreadSupported: false,
      threads: 1,
      binary: 'tfjs-backend-wasm-simd.wasm',
      replacementKernels: true,
      replacedKernels: [],
      addedKernels: [],
      nativeKernels: nativeLoaded
        ? { available: true, threads: nativeThreads, blasConfig: 'OpenBLAS 0.3.21', active: true, fusedActive: true, kernels: ['BatchMatMul'] }
        : { available: false, reason: 'addon not built', active: false, fusedActive: false, kernels: [] },
    },
    host: { cpuModel: 'test CPU', cpuCores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20.19.1' },
  };
}

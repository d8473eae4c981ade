import os from 'node:os';
import { tf } from '@moebench/backend';
import { loadAddon } from './addon.js';
import { makeNativeMatMul } from './mat_mul.js';

/** The wasm kernels the native pack replaces. */
export const NATIVE_KERNELS = [tf.BatchMatMul, tf._FusedMatMul] as const;

/** The environment variable that sets OpenBLAS's thread count. */
export const THREADS_VARIABLE = 'MOEBENCH_NATIVE_THREADS';

/** The facts `nativeKernelInfo` returns. */
export interface NativeKernelInfo {
  /** Whether the addon is built and loads. */
  available: boolean;
  /** The reason the addon is not available, present when it is not. */
  reason?: string;
  /** Whether the native kernels are the ones registered on the wasm backend now. */
  registered: boolean;
  /** The BLAS library and its build, e.g. `OpenBLAS 0.3.21 NO_AFFINITY USE_OPENMP Haswell MAX_THREADS=64`. */
  library?: string;
  /** OpenBLAS's threading model: `pthreads`, `openmp` or `sequential`. */
  threading?: 'pthreads' | 'openmp' | 'sequential';
  /** Threads OpenBLAS runs with. */
  threads?: number;
  /** The source of the thread count: the `threads` option, the environment variable, or the machine's cores. */
  threadsFrom?: 'option' | 'MOEBENCH_NATIVE_THREADS' | 'os.availableParallelism()';
  /** Kernel names registered natively (empty when not registered). */
  kernels: string[];
}

/** Options of `registerNativeKernels`. */
export interface NativeKernelOptions {
  /**
   * OpenBLAS threads. Default: the environment variable MOEBENCH_NATIVE_THREADS when set, else
   * `os.availableParallelism()`.
   */
  threads?: number;
}

/** OpenBLAS's threading models by the code `openblas_get_parallel()` returns. */
const THREADING_MODELS: Record<number, NonNullable<NativeKernelInfo['threading']>> = { 0: 'sequential', 1: 'pthreads', 2: 'openmp' };

/** The configs the native kernels replaced, restored by `unregisterNativeKernels`. */
const fallbacks = new Map<string, tf.KernelConfig>();
/** The native configs now registered, by kernel name. */
const registered = new Map<string, tf.KernelConfig>();
let threadsFrom: NativeKernelInfo['threadsFrom'];

/**
 * Registers the native BatchMatMul and _FusedMatMul on the wasm backend when the addon is built, and
 * sets OpenBLAS's thread count. The kernels registered before (moebench's wasm replacements or the
 * stock ones) stay as the fallback for inputs the native kernels do not take, and come back with
 * `unregisterNativeKernels`. Call it after `initBackend('wasm')`, which loads the wasm backend and
 * registers moebench's wasm kernels (and puts them back in place of these on every call). Calling
 * it again re-reads the kernels in place, so it takes over from kernels registered since.
 * Returns whether the native kernels are registered; false when the addon is not built.
 *
 * @throws RangeError for a thread count (option or MOEBENCH_NATIVE_THREADS) that is not a positive
 *   integer; Error when the wasm backend has no matmul kernel yet.
 */
export function registerNativeKernels(options: NativeKernelOptions = {}): boolean {
  const threads = resolveThreads(options);
  const load = loadAddon();
  if (!load.ok) return false;
  load.addon.setThreads(threads.value);
  threadsFrom = threads.from;

  for (const name of NATIVE_KERNELS) {
    const current = tf.getKernel(name, 'wasm');
    if (current === undefined) {
      throw new Error(`registerNativeKernels: the wasm backend has no ${name} kernel; import @tensorflow/tfjs-backend-wasm first`);
    }
    if (current === registered.get(name)) continue;
    fallbacks.set(name, current);
    const config: tf.KernelConfig = {
      kernelName: name,
      backendName: 'wasm',
      // The fallback may be a wasm kernel whose setup binds its wasm function.
      setupFunc: current.setupFunc,
      kernelFunc: makeNativeMatMul(load.addon, current.kernelFunc, name === tf._FusedMatMul),
    };
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
    registered.set(name, config);
  }
  return true;
}

/**
 * Puts back the kernels `registerNativeKernels` replaced. Returns whether any native kernel was
 * registered. Kernels something else registered since are left alone.
 */
export function unregisterNativeKernels(): boolean {
  let removed = false;
  for (const name of NATIVE_KERNELS) {
    const config = registered.get(name);
    const fallback = fallbacks.get(name);
    registered.delete(name);
    if (config === undefined || fallback === undefined || tf.getKernel(name, 'wasm') !== config) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(fallback);
    removed = true;
  }
  return removed;
}

/** Returns whether the native kernels are the ones registered on the wasm backend now. */
export function nativeKernelsActive(): boolean {
  return NATIVE_KERNELS.every((name) => {
    const config = registered.get(name);
    return config !== undefined && tf.getKernel(name, 'wasm') === config;
  });
}

/**
 * Describes the native kernels for run manifests and `moebench env`: whether the addon is built (and
 * why not), whether its kernels are registered, the BLAS library, its threads and where that count
 * came from, and the kernel names.
 */
export function nativeKernelInfo(): NativeKernelInfo {
  const load = loadAddon();
  const active = nativeKernelsActive();
  if (!load.ok) return { available: false, reason: load.reason, registered: false, kernels: [] };
  const blas = load.addon.info();
  const info: NativeKernelInfo = {
    available: true,
    registered: active,
    library: blas.config.trim(),
    threading: THREADING_MODELS[blas.parallel] ?? 'sequential',
    threads: blas.threads,
    kernels: active ? [...NATIVE_KERNELS] : [],
  };
  if (threadsFrom !== undefined) info.threadsFrom = threadsFrom;
  return info;
}

function resolveThreads(options: NativeKernelOptions): { value: number; from: NonNullable<NativeKernelInfo['threadsFrom']> } {
  if (options.threads !== undefined) {
    if (!Number.isInteger(options.threads) || options.threads < 1) {
      throw new RangeError(`registerNativeKernels: threads must be a positive integer, received ${options.threads}`);
    }
    return { value: options.threads, from: 'option' };
  }
  const text = process.env[THREADS_VARIABLE];
  if (text !== undefined && text !== '') {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isInteger(value) || value < 1) {
      throw new RangeError(`${THREADS_VARIABLE} must be a positive integer, received "${text}"`);
    }
    return { value, from: THREADS_VARIABLE };
  }
  return { value: os.availableParallelism(), from: 'os.availableParallelism()' };
}

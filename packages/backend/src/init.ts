import { createRequire } from 'node:module';
import { tf } from './tf.js';
import { registerWasmKernels, wasmKernelState, type WasmKernelOptions } from './kernels/register.js';

/** The backends `initBackend` accepts. `auto` picks `tensorflow` when it loads, else `wasm`. */
export const BACKEND_NAMES = ['auto', 'wasm', 'cpu', 'tensorflow'] as const;

/** A backend name `initBackend` accepts. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Options of `initBackend`. */
export interface InitBackendOptions extends WasmKernelOptions {
  /**
   * Number of threads for the wasm backend. Default: unset, which lets tfjs decide (under Node the
   * wasm backend runs single-threaded, since the threaded build needs a browser worker setup).
   */
  wasmThreads?: number;
}

/** Facts about the backend that `initBackend` started. */
export interface BackendInfo {
  /** The tfjs backend name now active: `wasm`, `cpu` or `tensorflow`. */
  name: 'wasm' | 'cpu' | 'tensorflow';
  /** For `tensorflow`: the package that loaded (`@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`). */
  nativePackage?: string;
  /** For `wasm`: whether moebench's replacement kernels are registered (false with the stock switch). */
  replacementKernels?: boolean;
  /** For `wasm`: whether matrix products run through the native OpenBLAS kernels. */
  nativeKernels?: boolean;
  /** The reason `auto` did not take `tensorflow`, when it did not. */
  autoFallbackReason?: string;
}

const require = createRequire(import.meta.url);
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let active: BackendInfo | null = null;

/**
 * Starts a tfjs backend and makes it the current one. Idempotent for the same name.
 *
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` with SIMD, plus the kernels training needs that it lacks
 *   and faster replacements for its slow ones (unless `MOEBENCH_STOCK_KERNELS=1` or
 *   `stockKernels: true`).
 * - `cpu`: `@tensorflow/tfjs-backend-cpu`, the numerical reference; slow.
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, whichever loads first.
 * - `auto` (default): `tensorflow` when it loads, else `wasm`.
 *
 * @throws Error for an unknown name (listing the valid ones), or for `tensorflow` when neither native
 *   package loads (naming the package to install and the load error).
 */
export async function initBackend(name: string = 'auto', options: InitBackendOptions = {}): Promise<BackendInfo> {
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new Error(`Unknown backend "${name}". Valid backends: ${BACKEND_NAMES.join(', ')}.`);
  }
  const requested = name as BackendName;

  if (requested === 'tensorflow' || requested === 'auto') {
    const native = loadNative();
    if (native.ok) {
      await tf.setBackend('tensorflow');
      await tf.ready();
      active = { name: 'tensorflow', nativePackage: native.packageName };
      return active;
    }
    if (requested === 'tensorflow') {
      throw new Error(
        `Backend "tensorflow" is not available: install @tensorflow/tfjs-node (CPU) or ` +
          `@tensorflow/tfjs-node-gpu (CUDA); their install downloads libtensorflow, so it needs ` +
          `network access to storage.googleapis.com. Load errors: ${native.reason}`,
      );
    }
    const info = await startWasm(options);
    active = { ...info, autoFallbackReason: native.reason };
    return active;
  }

  if (requested === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    await tf.ready();
    // The cpu backend prints a banner suggesting tfjs-node on first use; moebench reports the backend
    // in its own output, so the banner is switched off.
    (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    active = { name: 'cpu' };
    return active;
  }

  active = await startWasm(options);
  return active;
}

/** Returns the facts of the last `initBackend` call, or null before the first one. */
export function activeBackend(): BackendInfo | null {
  return active;
}

async function startWasm(options: InitBackendOptions): Promise<BackendInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (options.wasmThreads !== undefined) {
    if (!Number.isInteger(options.wasmThreads) || options.wasmThreads < 1) {
      throw new RangeError(`wasmThreads must be a positive integer, received ${options.wasmThreads}`);
    }
    wasm.setThreadsCount(options.wasmThreads);
  }
  const replacementKernels = registerWasmKernels(options);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('The wasm backend failed to initialise (tf.setBackend("wasm") returned false).');
  await tf.ready();
  return { name: 'wasm', replacementKernels, nativeKernels: wasmKernelState().native };
}

type NativeLoad = { ok: true; packageName: string } | { ok: false; reason: string };
let nativeLoad: NativeLoad | null = null;

// Loading is attempted once per process: a failed tfjs-node load has already registered its kernels,
// and a second attempt would only repeat that with warnings.
function loadNative(): NativeLoad {
  nativeLoad ??= tryLoadNative();
  return nativeLoad;
}

function tryLoadNative(): NativeLoad {
  const reasons: string[] = [];
  for (const packageName of NATIVE_PACKAGES) {
    try {
      requireQuietly(packageName);
      if (tf.findBackend('tensorflow') !== null || tf.findBackendFactory('tensorflow') !== null) {
        return { ok: true, packageName };
      }
      reasons.push(`${packageName}: loaded but registered no "tensorflow" backend`);
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      reasons.push(`${packageName}: ${message}`);
    }
  }
  return { ok: false, reason: reasons.join('; ') };
}

/**
 * Requires a native package with tfjs's "kernel ... is already registered" warnings dropped: when
 * tfjs-node-gpu fails to load after registering its kernels, tfjs-node registers the same ones
 * again and tfjs prints one warning per kernel (some two hundred lines). Other warnings pass.
 */
function requireQuietly(packageName: string): void {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && / is already registered$/.test(args[0])) return;
    warn(...args);
  };
  try {
    require(packageName);
  } finally {
    console.warn = warn;
  }
}

import { tf } from '../tf.js';
import { makeGatherKernel } from './gather.js';
import { makeIdentityKernel } from './identity.js';
import { makeMatMulKernel } from './mat_mul.js';
import { loadNativeKernels, makeNativeMatMulKernel, type NativeKernelStatus } from './native.js';
import { trainKernelConfigs } from './native_train.js';
import { fusedKernelConfigs } from './native_fused.js';
import { makeSliceKernel, makeSplitKernel, makeStridedSliceKernel, makeUnpackKernel } from './slice.js';
import { makeSumKernel } from './sum.js';
import { unsortedSegmentSumConfig } from './unsorted_segment_sum.js';

/** Options that control moebench's kernels on the wasm backend. */
export interface WasmKernelOptions {
  /**
   * Leave the wasm backend's stock kernels in place (no faster replacements, native or not), for
   * side-by-side measurement. Kernels the backend lacks entirely are still registered, since
   * training cannot run without them. Default: false, or true when the environment variable
   * MOEBENCH_STOCK_KERNELS is 1.
   */
  stockKernels?: boolean;
  /**
   * Run matrix products through the native OpenBLAS addon when it is built (see
   * scripts/build-native.mjs); without the addon this has no effect. Default: true, or false when
   * the environment variable MOEBENCH_NATIVE_KERNELS is 0.
   */
  nativeKernels?: boolean;
  /**
   * Register moebench's own fused native kernels (GELU, layer norm, softmax, AdamW, the sum of
   * squares and softmax cross-entropy, with their gradients) while the native matrix products are
   * active. With false the matrix products stay native and the ops take their composite paths, so
   * that a benchmark can show what the fused kernels add. Has no effect when the native kernels are
   * off. Default: true, or false when the environment variable MOEBENCH_FUSED_KERNELS is 0.
   */
  fusedKernels?: boolean;
}

/** Which of moebench's kernels are registered on the wasm backend. */
export interface WasmKernelState {
  /** Whether the replacement kernels are registered (false with the stock switch). */
  replacements: boolean;
  /** Whether the matrix-product replacements are the native OpenBLAS ones. */
  native: boolean;
  /** Whether moebench's fused native kernels (`nativeCustomKernels()`) are registered. */
  fused: boolean;
  /** Whether the native addon loaded, and its BLAS facts. */
  nativeStatus: NativeKernelStatus;
}

/** Kernels the stock wasm backend lacks. They are registered whatever the stock switch is set to. */
export const MISSING_KERNELS: readonly tf.KernelConfig[] = [unsortedSegmentSumConfig];

/** Names of the stock wasm kernels moebench replaces (unless the stock switch is on). */
export const REPLACED_KERNELS = [
  tf.BatchMatMul,
  tf._FusedMatMul,
  tf.Sum,
  tf.GatherV2,
  tf.Identity,
  tf.Slice,
  tf.SplitV,
  tf.Unpack,
  tf.StridedSlice,
] as const;

/** Names of the replaced kernels that have a native variant. */
export const NATIVE_KERNELS = [tf.BatchMatMul, tf._FusedMatMul] as const;

/**
 * moebench's own kernels (fused operations tfjs has no kernel for), registered on the wasm backend
 * only while the native kernels are active and the fused switch is on. Ops that use one check
 * `hasKernel` first and fall back to their composite form.
 */
let customConfigs: tf.KernelConfig[] | null = null;

/** Names of moebench's own native kernels, registered or not (empty when the addon did not load). */
export function nativeCustomKernels(): string[] {
  return (customConfigs ?? []).map((config) => config.kernelName);
}

/** Returns whether the active backend has a kernel of this name registered now. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

type ReplacedKernel = (typeof REPLACED_KERNELS)[number];
type KernelSet = 'stock' | 'wasm' | 'native';

/** The kernel configs of each set, built once from the stock configs on first use. */
let configs: Record<KernelSet, Map<string, tf.KernelConfig>> | null = null;

let state: WasmKernelState = { replacements: false, native: false, fused: false, nativeStatus: { available: false, reason: 'not loaded yet' } };

/**
 * Registers the missing and replacement kernels on the wasm backend, or with `stockKernels` puts
 * the stock kernels back in place of the replacements. Matrix products use the native OpenBLAS
 * kernels when the addon is built and `nativeKernels` is not false, and moebench's fused kernels
 * are registered with them unless `fusedKernels` is false. Call it after
 * `@tensorflow/tfjs-backend-wasm` has loaded (its import registers the stock kernels) and before
 * `tf.setBackend('wasm')`, which runs the kernels' setup; `initBackend('wasm')` does both.
 * Returns whether the replacements are active.
 *
 * @throws RangeError for a switch variable (MOEBENCH_STOCK_KERNELS, MOEBENCH_NATIVE_KERNELS,
 * MOEBENCH_FUSED_KERNELS) that is not 0 or 1, and for an invalid MOEBENCH_NATIVE_THREADS when the
 * native addon loads.
 */
export function registerWasmKernels(options: WasmKernelOptions = {}): boolean {
  const stock = options.stockKernels ?? switchSetting('MOEBENCH_STOCK_KERNELS', false);
  const nativeRequested = options.nativeKernels ?? switchSetting('MOEBENCH_NATIVE_KERNELS', true);
  const fusedRequested = options.fusedKernels ?? switchSetting('MOEBENCH_FUSED_KERNELS', true);
  for (const config of MISSING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') === undefined) tf.registerKernel(config);
  }

  const native = loadNativeKernels();
  configs ??= buildConfigs(native.blas);
  const useNative = !stock && nativeRequested && native.blas !== undefined;
  for (const name of REPLACED_KERNELS) {
    const set: KernelSet = stock ? 'stock' : useNative && configs.native.has(name) ? 'native' : 'wasm';
    const config = configs[set].get(name);
    if (config === undefined) throw new Error(`registerWasmKernels: no ${set} ${name} kernel was built`);
    if (tf.getKernel(name, 'wasm') === config) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  customConfigs ??= native.blas === undefined ? [] : [...fusedKernelConfigs(native.blas), ...trainKernelConfigs(native.blas)];
  const useFused = useNative && fusedRequested && customConfigs.length > 0;
  for (const config of customConfigs) {
    const registered = tf.getKernel(config.kernelName, 'wasm') !== undefined;
    if (useFused && !registered) tf.registerKernel(config);
    if (!useFused && registered) tf.unregisterKernel(config.kernelName, 'wasm');
  }
  state = { replacements: !stock, native: useNative, fused: useFused, nativeStatus: native.status };
  return state.replacements;
}

/**
 * Reads an on/off environment variable: 1 turns it on, 0 off, unset or empty leaves `fallback`.
 * Anything else is rejected, so that a value such as `false` cannot silently leave a switch on.
 */
export function switchSetting(name: string, fallback: boolean): boolean {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  if (value === '1') return true;
  if (value === '0') return false;
  throw new RangeError(`${name} must be 0 or 1 (or unset), received "${value}"`);
}

/** Returns whether moebench's replacement kernels are the ones registered on the wasm backend now. */
export function wasmReplacementsActive(): boolean {
  return state.replacements;
}

/** Returns which of moebench's kernels are registered on the wasm backend now. */
export function wasmKernelState(): WasmKernelState {
  return state;
}

function buildConfigs(blas: Parameters<typeof makeNativeMatMulKernel>[0] | undefined): Record<KernelSet, Map<string, tf.KernelConfig>> {
  const stockTranspose = stockKernel(tf.Transpose).kernelFunc;
  const wasmFactories: Record<ReplacedKernel, (stock: tf.KernelFunc) => tf.KernelFunc> = {
    [tf.BatchMatMul]: (stock) => makeMatMulKernel(stock, stockTranspose),
    [tf._FusedMatMul]: (stock) => makeMatMulKernel(stock, stockTranspose, true),
    [tf.Sum]: (stock) => makeSumKernel(stock),
    [tf.GatherV2]: (stock) => makeGatherKernel(stock),
    [tf.Identity]: (stock) => makeIdentityKernel(stock),
    [tf.Slice]: (stock) => makeSliceKernel(stock),
    [tf.SplitV]: (stock) => makeSplitKernel(stock),
    [tf.Unpack]: (stock) => makeUnpackKernel(stock),
    [tf.StridedSlice]: (stock) => makeStridedSliceKernel(stock),
  };
  const result: Record<KernelSet, Map<string, tf.KernelConfig>> = { stock: new Map(), wasm: new Map(), native: new Map() };
  for (const name of REPLACED_KERNELS) {
    const stock = stockKernel(name);
    // Each replacement calls the stock kernel (directly or as its fallback), whose setup binds its
    // wasm function, so every config carries the stock setup.
    const replacement = (kernelFunc: tf.KernelFunc): tf.KernelConfig => ({
      kernelName: name,
      backendName: 'wasm',
      setupFunc: stock.setupFunc,
      kernelFunc,
    });
    const wasm = wasmFactories[name](stock.kernelFunc);
    result.stock.set(name, stock);
    result.wasm.set(name, replacement(wasm));
    if (blas !== undefined && (NATIVE_KERNELS as readonly string[]).includes(name)) {
      result.native.set(name, replacement(makeNativeMatMulKernel(blas, wasm, name === tf._FusedMatMul)));
    }
  }
  return result;
}

function stockKernel(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, 'wasm');
  if (config === undefined) {
    throw new Error(`registerWasmKernels: the wasm backend has no ${name} kernel; load @tensorflow/tfjs-backend-wasm first`);
  }
  return config;
}

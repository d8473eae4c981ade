import { tf } from '../tf.js';
import { makeMatMulKernel } from './mat_mul.js';
import { makeSumKernel } from './sum.js';
import { unsortedSegmentSumConfig } from './unsorted_segment_sum.js';

/** Options that control moebench's kernels on the wasm backend. */
export interface WasmKernelOptions {
  /**
   * Leave the wasm backend's stock kernels in place (no faster replacements), for side-by-side
   * measurement. Kernels the backend lacks entirely are still registered, since training cannot run
   * without them. Default: false, or true when the environment variable MOEBENCH_STOCK_KERNELS is 1.
   */
  stockKernels?: boolean;
}

/** Kernels the stock wasm backend lacks. They are registered whatever the stock switch is set to. */
export const MISSING_KERNELS: readonly tf.KernelConfig[] = [unsortedSegmentSumConfig];

/** Names of the stock wasm kernels moebench replaces (unless the stock switch is on). */
export const REPLACED_KERNELS = [tf.BatchMatMul, tf._FusedMatMul, tf.Sum] as const;

/** The stock configs, saved the first time they are replaced so the stock switch can restore them. */
const stockConfigs = new Map<string, tf.KernelConfig>();
/** The replacement configs, built once from the saved stock ones. */
const replacementConfigs = new Map<string, tf.KernelConfig>();

let replacementsActive = false;

/**
 * Registers the missing and replacement kernels on the wasm backend, or with `stockKernels` puts
 * the stock kernels back in place of the replacements. Call it after `@tensorflow/tfjs-backend-wasm`
 * has loaded (its import registers the stock kernels) and before `tf.setBackend('wasm')`, which
 * runs the kernels' setup; `initBackend('wasm')` does both. Returns whether the replacements are
 * active.
 */
export function registerWasmKernels(options: WasmKernelOptions = {}): boolean {
  const stock = options.stockKernels ?? process.env.MOEBENCH_STOCK_KERNELS === '1';
  for (const config of MISSING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') === undefined) tf.registerKernel(config);
  }

  if (replacementConfigs.size === 0) buildReplacements();
  const wanted = stock ? stockConfigs : replacementConfigs;
  for (const name of REPLACED_KERNELS) {
    const config = wanted.get(name);
    if (config === undefined) throw new Error(`registerWasmKernels: no ${stock ? 'stock' : 'replacement'} ${name} kernel`);
    if (tf.getKernel(name, 'wasm') === config) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  replacementsActive = !stock;
  return replacementsActive;
}

/** Returns whether moebench's replacement kernels are the ones registered on the wasm backend now. */
export function wasmReplacementsActive(): boolean {
  return replacementsActive;
}

function buildReplacements(): void {
  const stockTranspose = stockKernel(tf.Transpose).kernelFunc;
  const factories: Record<(typeof REPLACED_KERNELS)[number], (stock: tf.KernelFunc) => tf.KernelFunc> = {
    [tf.BatchMatMul]: (stock) => makeMatMulKernel(stock, stockTranspose),
    [tf._FusedMatMul]: (stock) => makeMatMulKernel(stock, stockTranspose, true),
    [tf.Sum]: (stock) => makeSumKernel(stock),
  };
  for (const name of REPLACED_KERNELS) {
    const stock = stockKernel(name);
    stockConfigs.set(name, stock);
    replacementConfigs.set(name, {
      kernelName: name,
      backendName: 'wasm',
      // The replacement calls the stock kernel, whose setup binds its wasm function.
      setupFunc: stock.setupFunc,
      kernelFunc: factories[name](stock.kernelFunc),
    });
  }
}

function stockKernel(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, 'wasm');
  if (config === undefined) {
    throw new Error(`registerWasmKernels: the wasm backend has no ${name} kernel; load @tensorflow/tfjs-backend-wasm first`);
  }
  return config;
}

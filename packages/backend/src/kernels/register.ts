import { tf } from '../tf.js';
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

/** Kernels the stock wasm backend lacks; registered whatever the stock switch says. */
const MISSING_KERNELS: tf.KernelConfig[] = [unsortedSegmentSumConfig];

/**
 * Registers the missing and replacement kernels on the wasm backend. Returns whether the
 * replacements are active.
 */
export function registerWasmKernels(options: WasmKernelOptions = {}): boolean {
  const stock = options.stockKernels ?? process.env.MOEBENCH_STOCK_KERNELS === '1';
  for (const config of MISSING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') === undefined) tf.registerKernel(config);
  }
  return !stock;
}

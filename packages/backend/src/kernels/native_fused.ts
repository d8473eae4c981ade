import type { tf } from '../tf.js';

/**
 * The fused element-wise kernels of the native addon (native/fused.c), as kernel configs for the
 * wasm backend. Registered only when the native kernels are active.
 */
export function fusedKernelConfigs(addon: object): tf.KernelConfig[] {
  void addon;
  return [];
}

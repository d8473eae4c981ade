export { tf } from './tf.js';
export { Rng } from './rng.js';
export { NonFiniteError } from './errors.js';
export { releaseAbandonedTape } from './tape.js';
export {
  BACKEND_NAMES,
  activeBackend,
  initBackend,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
} from './init.js';
export {
  MISSING_KERNELS,
  NATIVE_KERNELS,
  REPLACED_KERNELS,
  hasKernel,
  nativeCustomKernels,
  registerWasmKernels,
  switchSetting,
  wasmKernelState,
  wasmReplacementsActive,
  type WasmKernelOptions,
  type WasmKernelState,
} from './kernels/register.js';
export { MAX_NATIVE_THREADS, defaultNativeThreads, nativeThreadsSetting, type NativeKernelStatus } from './kernels/native.js';
export {
  ADAMW_KERNEL,
  SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL,
  SOFTMAX_CROSS_ENTROPY_KERNEL,
  SUM_OF_SQUARES_KERNEL,
  type AdamWKernelAttrs,
} from './kernels/native_train.js';
export {
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  LAYER_NORM_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  SOFTMAX_KERNEL,
} from './kernels/native_fused.js';
export {
  describeBackend,
  type BackendDescription,
  type HostDescription,
  type WasmDescription,
} from './describe.js';

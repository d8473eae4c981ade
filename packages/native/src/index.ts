export {
  NATIVE_KERNELS,
  THREADS_VARIABLE,
  nativeKernelInfo,
  nativeKernelsActive,
  registerNativeKernels,
  unregisterNativeKernels,
  type NativeKernelInfo,
  type NativeKernelOptions,
} from './register.js';
export { planGemm, type GemmPlan } from './mat_mul.js';

export { tf } from './tf.js';
export { Rng } from './rng.js';
export {
  BACKEND_NAMES,
  activeBackend,
  initBackend,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
} from './init.js';
export { registerWasmKernels, type WasmKernelOptions } from './kernels/register.js';

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
export {
  MISSING_KERNELS,
  REPLACED_KERNELS,
  registerWasmKernels,
  wasmReplacementsActive,
  type WasmKernelOptions,
} from './kernels/register.js';
export {
  describeBackend,
  type BackendDescription,
  type HostDescription,
  type WasmDescription,
} from './describe.js';

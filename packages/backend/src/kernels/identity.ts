import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * Builds an Identity for the wasm backend that shares the input's heap buffer instead of copying it.
 * The backend counts references per buffer (`incRef` / `disposeData`, the mechanism its own Reshape
 * uses), so the output takes one more reference to the same data and the buffer is freed only when
 * both tensors are gone. tfjs runs Identity for every `tf.clone` and for the saved tensors of custom
 * gradients, 160 to 310 times per training step of the quick suite's models, and the stock kernel
 * copies each one. String tensors go to the stock kernel.
 */
export function makeIdentityKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return stock(args as never) as tf.TensorInfo;
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return kernel as unknown as tf.KernelFunc;
}

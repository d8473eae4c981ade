import type { tf } from '../tf.js';

/**
 * The part of `@tensorflow/tfjs-backend-wasm`'s `BackendWasm` that moebench's kernels use. Tensors
 * live on the wasm heap; `typedArrayFromHeap` returns a view of one without copying.
 *
 * A view is invalidated when the heap grows, and `makeOutput` may grow it: allocate every output
 * first, then take the views of inputs and outputs.
 */
export interface WasmBackend {
  /** Allocates an uninitialised tensor on the heap (its contents are whatever the heap held). */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's data on the heap. */
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  /** Adds one reference to a tensor's data, so that it outlives one more `disposeData`. */
  incRef(dataId: object): void;
  /** Number of references to a tensor's data (0 once it is freed). */
  refCount(dataId: object): number;
  /** Drops one reference to a tensor's data and frees it when none remain. */
  disposeData(dataId: object, force?: boolean): boolean;
}

import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * Builds a GatherV2 for the wasm backend that copies whole rows. The stock kernel walks the output
 * element by element through a strided index computation; for the MoE dispatch and combine gathers
 * ([4096, 256] rows out of [2049, 256]) that was about 30 ms per call on a 2-core AMD EPYC (Node 20,
 * tfjs 4.22), most of a routed layer's overhead. Here each output row `x[o, indices[i], :]` is one
 * `TypedArray.set` of a contiguous slice.
 *
 * Inputs `x` (any numeric dtype) and `indices` (int32); attributes `axis` and `batchDims`.
 * `batchDims` other than 0, and empty tensors, go to the stock kernel. An index outside
 * `[0, x.shape[axis])` raises a RangeError naming it, as the cpu backend does.
 */
export function makeGatherKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    const [parsedAxis] = tf.util.parseAxisParam(axis, x.shape);
    if ((batchDims ?? 0) !== 0 || x.dtype === 'string' || x.dtype === 'complex64' || tf.util.sizeFromShape(x.shape) === 0) {
      return stock(args as never) as tf.TensorInfo;
    }

    const outer = tf.util.sizeFromShape(x.shape.slice(0, parsedAxis));
    const axisSize = x.shape[parsedAxis];
    const inner = tf.util.sizeFromShape(x.shape.slice(parsedAxis + 1));
    const indexCount = tf.util.sizeFromShape(indices.shape);
    const outShape = [...x.shape.slice(0, parsedAxis), ...indices.shape, ...x.shape.slice(parsedAxis + 1)];
    const out = backend.makeOutput(outShape, x.dtype);
    if (indexCount === 0) return out;

    // Views only after makeOutput, which may have grown (and so detached) the heap.
    const result = backend.typedArrayFromHeap(out);
    const values = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(indices);
    for (let i = 0; i < indexCount; i++) {
      const id = ids[i];
      if (id < 0 || id >= axisSize) {
        // The output was allocated above; free it before raising so the heap does not leak.
        backend.disposeData(out.dataId);
        throw new RangeError(`GatherV2: index ${id} at position ${i} is outside [0, ${axisSize - 1}]`);
      }
    }
    for (let o = 0; o < outer; o++) {
      const sourceBase = o * axisSize * inner;
      const targetBase = o * indexCount * inner;
      for (let i = 0; i < indexCount; i++) {
        const start = sourceBase + ids[i] * inner;
        result.set(values.subarray(start, start + inner), targetBase + i * inner);
      }
    }
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * Builds a Sum for the wasm backend that reduces leading and middle axes without a transpose. The
 * stock kernel reduces only innermost axes, so for any other axes it first transposes the whole
 * input. For a bias gradient (`[tokens, width]` summed over tokens) the transpose is most of the
 * time: 2.4 ms for [1024, 256] on a 2-core AMD EPYC (Node 20), against 0.48 ms for the row-by-row
 * sum below.
 *
 * When the reduced axes form one contiguous block that is not innermost, the input is read as
 * `[outer, reduced, inner]`. Each output row `[inner]` is then the sum of `reduced` input rows,
 * accumulated in float64. Innermost reductions, non-contiguous axes and non-float32 inputs go to the
 * stock kernel.
 */
export function makeSumKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((p, q) => p - q);
    const first = axes[0];
    const last = axes[axes.length - 1];
    const contiguous = axes.length > 0 && last - first + 1 === axes.length;
    if (x.dtype !== 'float32' || !contiguous || last === rank - 1 || tf.util.sizeFromShape(x.shape) === 0) {
      return stock(args as never) as tf.TensorInfo;
    }

    const outer = tf.util.sizeFromShape(x.shape.slice(0, first));
    const reduced = tf.util.sizeFromShape(x.shape.slice(first, last + 1));
    const inner = tf.util.sizeFromShape(x.shape.slice(last + 1));
    const keptShape = x.shape.map((dim, i) => (i >= first && i <= last ? 1 : dim));
    const outShape = keepDims ? keptShape : x.shape.filter((_, i) => i < first || i > last);
    const out = backend.makeOutput(outShape, 'float32');

    // Views only after makeOutput, which may have grown (and so detached) the heap.
    const result = backend.typedArrayFromHeap(out);
    const values = backend.typedArrayFromHeap(x);
    const row = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      row.fill(0);
      for (let r = 0; r < reduced; r++) {
        const base = (o * reduced + r) * inner;
        for (let i = 0; i < inner; i++) row[i] += values[base + i];
      }
      result.set(row, o * inner);
    }
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * UnsortedSegmentSum on the wasm backend: `out[s, ...] = sum of x[i..., ...] over i with
 * segmentIds[i...] = s`. It is the gradient of `tf.gather`, which the stock wasm backend lacks.
 *
 * Inputs: `x` (float32 or int32), `segmentIds` (int32, shape a prefix of x's shape). Attribute:
 * `numSegments`. Output: `[numSegments, ...x.shape.slice(segmentIds.rank)]`, x's dtype. Ids outside
 * `[0, numSegments)` contribute nothing, as in TensorFlow and the cpu backend.
 */
export function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;

  if (!Number.isInteger(numSegments) || numSegments < 1) {
    throw new RangeError(`UnsortedSegmentSum: numSegments must be a positive integer, received ${numSegments}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new TypeError(`UnsortedSegmentSum: x must be float32 or int32, received ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  const isPrefix = idRank <= x.shape.length && segmentIds.shape.every((dim, i) => dim === x.shape[i]);
  if (!isPrefix) {
    throw new RangeError(
      `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }

  const rowShape = x.shape.slice(idRank);
  const rowSize = rowShape.reduce((acc, dim) => acc * dim, 1);
  const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);

  // Views only after makeOutput, which may have grown (and so detached) the heap.
  const result = backend.typedArrayFromHeap(out);
  const values = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  result.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i];
    if (segment < 0 || segment >= numSegments) continue;
    const source = i * rowSize;
    const target = segment * rowSize;
    for (let k = 0; k < rowSize; k++) result[target + k] += values[source + k];
  }
  return out;
}

/** The kernel registration of `unsortedSegmentSum` on the wasm backend. */
export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};

import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/** The parts of a tfjs kernel invocation a wasm kernel function receives. */
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/**
 * Products with at most this many multiply-adds (m * k * n) run on the stock kernel when batched,
 * because one XNNPACK call per batch entry then costs more than the stock scalar loop. On
 * [64, s, s] x [64, s, s] products (wasm SIMD, Node 20, 2-core AMD EPYC) the two took equal time
 * near s = 20: 0.66 against 1.04 ms at s = 16, 1.19 against 1.07 ms at s = 20.
 */
const SMALL_PRODUCT = 8192;

/**
 * Builds a BatchMatMul (or, with `fused`, a _FusedMatMul) for the wasm backend that sends every
 * product down the stock kernel's one fast path. The stock kernel hands a single non-transposed
 * product to XNNPACK (tens of GFLOP/s), but runs a scalar loop as soon as a transpose flag is set
 * or the batch is more than one, some 10 to 40 times slower. This kernel instead:
 *
 * 1. transposes a transposed operand explicitly with the wasm Transpose kernel (a copy, O(size));
 * 2. folds a's batch into its rows when b has a batch of one (`[batch, m, k] x [k, n]` is one
 *    `[batch * m, k] x [k, n]` product, with no copy);
 * 3. otherwise runs one 2-D product per output batch entry on copies of the two slices, following
 *    the broadcast of the batch dimensions, and copies each result into place.
 *
 * It computes C^T instead when that copies fewer values, and leaves many tiny batched products to
 * the stock kernel.
 *
 * Each 2-D product is the stock kernel called without transposes, so the fused variant still
 * applies its rank-1 bias and activation inside XNNPACK. Outputs match the stock kernel's shapes and
 * dtypes. Inputs the stock kernel handles no faster this way (non-float32, or prelu weights of rank
 * above 1, which would need slicing per batch entry) go to the stock kernel unchanged.
 */
export function makeMatMulKernel(stock: tf.KernelFunc, transpose: tf.KernelFunc, fused = false): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { a, b, ...extras } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo } & tf.NamedTensorInfoMap;
    const attrs = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const { transposeA, transposeB } = attrs;
    const prelu = extras.preluActivationWeights as tf.TensorInfo | undefined;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || (prelu !== undefined && prelu.shape.length > 1)) {
      return stock(args as never) as tf.TensorInfo;
    }

    const m = transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
    const kA = transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
    const kB = transposeB ? b.shape[b.shape.length - 1] : b.shape[b.shape.length - 2];
    const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    if (kA !== kB) {
      throw new Error(
        `matMul: inner dimensions differ: a has ${kA} (shape [${a.shape}], transposeA=${transposeA}) and ` +
          `b has ${kB} (shape [${b.shape}], transposeB=${transposeB})`,
      );
    }
    const k = kA;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const outShape = [...outer, m, n];
    const batchA = sizeOf(outerA);
    const batchB = sizeOf(outerB);
    const batch = sizeOf(outer);

    // Many tiny products cost more in per-product calls than the stock scalar loop spends on them.
    // Only plain BatchMatMul with equal batch shapes goes there: the stock kernels give wrong values
    // for batches broadcast along different axes, and the stock fused kernel for batched products
    // with relu6, leakyrelu or prelu activations (tfjs-backend-wasm 4.22).
    const equalBatches = tf.util.arraysEqual(outerA, outerB);
    if (!fused && equalBatches && batch > 1 && m * k * n <= SMALL_PRODUCT) return stock(args as never) as tf.TensorInfo;

    // C = op(A) op(B) can also be computed as C^T = op(B)^T op(A)^T and one transpose of C. That
    // moves fewer values when the transposed operand is much larger than the other operand and C,
    // as in a router's weight gradient ([tokens, d]^T x [tokens, experts]).
    const directCopies = (transposeA ? k * m : 0) + (transposeB ? k * n : 0);
    const swappedCopies = (transposeB ? 0 : k * n) + (transposeA ? 0 : k * m) + m * n;
    if (!fused && swappedCopies < directCopies) {
      const swappedAttrs = { ...attrs, transposeA: !transposeB, transposeB: !transposeA };
      const swapped = kernel({ inputs: { a: b, b: a }, backend: args.backend, attrs: swappedAttrs as never });
      const view = { dataId: swapped.dataId, shape: [batch, n, m], dtype: swapped.dtype };
      const out = transpose({ inputs: { x: view }, backend: args.backend, attrs: { perm: [0, 2, 1] } } as never) as tf.TensorInfo;
      backend.disposeData(swapped.dataId);
      out.shape = outShape;
      return out;
    }

    const temporaries: tf.TensorInfo[] = [];
    const plain = (x: tf.TensorInfo, rows: number, cols: number, transposed: boolean, count: number) => {
      // [count, rows, cols] row-major, made so with one explicit transpose when needed.
      if (!transposed) return { dataId: x.dataId, shape: [count, rows, cols], dtype: x.dtype };
      const view = { dataId: x.dataId, shape: [count, cols, rows], dtype: x.dtype };
      const result = transpose({ inputs: { x: view }, backend: args.backend, attrs: { perm: [0, 2, 1] } } as never) as tf.TensorInfo;
      temporaries.push(result);
      return result;
    };
    const product = (left: tf.TensorInfo, right: tf.TensorInfo): tf.TensorInfo =>
      stock({
        inputs: { ...(fused ? extras : {}), a: left, b: right },
        backend: args.backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      } as never) as tf.TensorInfo;

    try {
      const left = plain(a, m, k, transposeA, batchA);
      const right = plain(b, k, n, transposeB, batchB);
      if (batchB === 1) {
        const out = product({ dataId: left.dataId, shape: [1, batchA * m, k], dtype: 'float32' }, right);
        out.shape = outShape;
        return out;
      }

      const indexA = broadcastIndex(outer, outerA);
      const indexB = broadcastIndex(outer, outerB);
      const out = backend.makeOutput(outShape, 'float32');
      const sliceA = sliceOf(backend, left, batchA, m, k, temporaries);
      const sliceB = sliceOf(backend, right, batchB, k, n, temporaries);
      for (let i = 0; i < batch; i++) {
        const result = product(sliceA(indexA(i)), sliceB(indexB(i)));
        const values = backend.typedArrayFromHeap(result);
        backend.typedArrayFromHeap(out).set(values, i * m * n);
        backend.disposeData(result.dataId);
      }
      return out;
    } finally {
      for (const info of temporaries) backend.disposeData(info.dataId);
    }
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Returns a function that gives entry `index` of a `[count, rows, cols]` tensor as its own
 * `[1, rows, cols]` tensor. That is the tensor itself when count is 1, else a copy. Each copy is made
 * once and kept until the kernel ends, so a broadcast operand is copied (and packed by XNNPACK) once.
 */
function sliceOf(
  backend: WasmBackend,
  x: tf.TensorInfo,
  count: number,
  rows: number,
  cols: number,
  temporaries: tf.TensorInfo[],
): (index: number) => tf.TensorInfo {
  const shape = [1, rows, cols];
  if (count === 1) return () => ({ dataId: x.dataId, shape, dtype: x.dtype });
  const made = new Map<number, tf.TensorInfo>();
  const size = rows * cols;
  return (index) => {
    let slice = made.get(index);
    if (slice === undefined) {
      slice = backend.makeOutput(shape, 'float32');
      temporaries.push(slice);
      made.set(index, slice);
      // Take the source view after makeOutput, which may grow the heap.
      const source = backend.typedArrayFromHeap(x).subarray(index * size, (index + 1) * size);
      backend.typedArrayFromHeap(slice).set(source);
    }
    return slice;
  };
}

/**
 * Maps a flat index over the broadcast batch shape `outer` to the flat index into an operand whose
 * batch shape is `operand`. Shapes align on the right, and size-1 and missing dimensions repeat.
 */
export function broadcastIndex(outer: number[], operand: number[]): (index: number) => number {
  if (sizeOf(operand) === 1) return () => 0;
  if (tf.util.arraysEqual(outer, operand)) return (index) => index;
  const offset = outer.length - operand.length;
  return (index) => {
    let remaining = index;
    let result = 0;
    let stride = 1;
    for (let axis = outer.length - 1; axis >= 0; axis--) {
      const coordinate = remaining % outer[axis];
      remaining = Math.floor(remaining / outer[axis]);
      const operandAxis = axis - offset;
      if (operandAxis < 0) continue;
      const dim = operand[operandAxis];
      if (dim !== 1) result += coordinate * stride;
      stride *= dim;
    }
    return result;
  };
}

function sizeOf(shape: number[]): number {
  return shape.reduce((acc, dim) => acc * dim, 1);
}

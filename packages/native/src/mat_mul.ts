import { tf } from '@moebench/backend';
import type { NativeAddon } from './addon.js';

/**
 * The part of the wasm backend (`BackendWasm`) the native kernels use. `typedArrayFromHeap` returns
 * a view of a tensor on the wasm heap, without a copy. `makeOutput` may grow the heap, which detaches
 * earlier views, so every output is made before any view is taken.
 */
export interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/** The arguments tfjs passes a kernel function. */
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** Fused activations the addon applies, with their codes in csrc/addon.cc. prelu goes to the fallback. */
const ACTIVATION_CODES: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, elu: 4, leakyrelu: 5 };

/** Offsets (in elements) of each output batch entry's operands, and the product's dimensions. */
export interface GemmPlan {
  m: number;
  n: number;
  k: number;
  outShape: number[];
  /** Rows of `a` folded into one product when b has a batch of one and a is not transposed. */
  offsetsA: Int32Array;
  offsetsB: Int32Array;
  /** m as passed to sgemm: m times a's batch when the batch is folded into the rows. */
  gemmM: number;
}

/**
 * Works out the sgemm calls for `op(a) x op(b)` with tfjs's matMul semantics: the last two
 * dimensions multiply, the leading (batch) dimensions broadcast. Throws, naming both shapes, when the
 * inner dimensions differ or the batches do not broadcast.
 */
export function planGemm(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): GemmPlan {
  const rankA = aShape.length;
  const rankB = bShape.length;
  const m = transposeA ? aShape[rankA - 1] : aShape[rankA - 2];
  const kA = transposeA ? aShape[rankA - 2] : aShape[rankA - 1];
  const kB = transposeB ? bShape[rankB - 1] : bShape[rankB - 2];
  const n = transposeB ? bShape[rankB - 2] : bShape[rankB - 1];
  if (kA !== kB) {
    throw new Error(
      `matMul: inner dimensions differ: a has ${kA} (shape [${aShape}], transposeA=${transposeA}) and ` +
        `b has ${kB} (shape [${bShape}], transposeB=${transposeB})`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const outShape = [...outer, m, n];
  const batch = sizeOf(outer);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const k = kA;

  // [batch, m, k] x [k, n] is one [batch * m, k] x [k, n] product: one large sgemm, not many small ones.
  if (batchB === 1 && !transposeA && batchA === batch) {
    return { m, n, k, outShape, offsetsA: Int32Array.of(0), offsetsB: Int32Array.of(0), gemmM: batch * m };
  }
  const indexA = broadcastIndex(outer, outerA);
  const indexB = broadcastIndex(outer, outerB);
  const offsetsA = new Int32Array(batch);
  const offsetsB = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    offsetsA[i] = indexA(i) * m * k;
    offsetsB[i] = indexB(i) * k * n;
  }
  return { m, n, k, outShape, offsetsA, offsetsB, gemmM: m };
}

/**
 * Builds the native BatchMatMul (or, with `fused`, _FusedMatMul) for the wasm backend. It runs
 * OpenBLAS sgemm on views of the wasm heap, once per output batch entry, or once in all when b has
 * no batch and a is not transposed. Transposes go to sgemm as flags, so nothing is copied. The fused kernel adds a bias that is a
 * scalar or a vector along the last axis and applies linear, relu, relu6, sigmoid, elu or leakyrelu
 * in the addon. Everything else (non-float32 inputs, prelu, other bias shapes, empty tensors, or an
 * operand too large for 32-bit offsets) goes to `fallback`, the kernel registered before.
 */
export function makeNativeMatMul(addon: NativeAddon, fallback: tf.KernelFunc, fused: boolean): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as WasmHeap;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string; leakyreluAlpha?: number };
    const transposeA = attrs.transposeA ?? false;
    const transposeB = attrs.transposeB ?? false;
    const activation = fused ? (attrs.activation ?? 'linear') : 'linear';
    const code = ACTIVATION_CODES[activation];
    if (
      a === undefined ||
      b === undefined ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      code === undefined ||
      preluActivationWeights !== undefined ||
      sizeOf(a.shape) === 0 ||
      sizeOf(b.shape) === 0 ||
      sizeOf(a.shape) >= 2 ** 31 ||
      sizeOf(b.shape) >= 2 ** 31
    ) {
      calls.fallback++;
      return fallback(args as never) as tf.TensorInfo;
    }
    const plan = planGemm(a.shape, b.shape, transposeA, transposeB);
    const hasBias = fused && bias !== undefined;
    if (hasBias && !isRowBias(bias, plan.n)) {
      calls.fallback++;
      return fallback(args as never) as tf.TensorInfo;
    }
    calls.native++;

    const out = backend.makeOutput(plan.outShape, 'float32');
    // Views only now: makeOutput may have grown the heap.
    const c = backend.typedArrayFromHeap(out) as Float32Array;
    addon.gemm(
      backend.typedArrayFromHeap(a) as Float32Array,
      backend.typedArrayFromHeap(b) as Float32Array,
      c,
      plan.gemmM,
      plan.n,
      plan.k,
      transposeA,
      transposeB,
      plan.offsetsA,
      plan.offsetsB,
    );
    if (hasBias || code !== 0) {
      const biasValues = hasBias ? (backend.typedArrayFromHeap(bias) as Float32Array) : EMPTY;
      addon.epilogue(c, biasValues, code, attrs.leakyreluAlpha ?? 0.2);
    }
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

const EMPTY = new Float32Array(0);

/**
 * Calls of the native kernels that ran on OpenBLAS and that went to the fallback, for tests that
 * check which path an input takes. Not exported from the package.
 */
export const calls = { native: 0, fallback: 0 };

/** Returns whether a bias is a float32 scalar, or a vector along the output's last axis (shape [..1, n]). */
function isRowBias(bias: tf.TensorInfo, n: number): boolean {
  if (bias.dtype !== 'float32') return false;
  const size = sizeOf(bias.shape);
  if (size === 1) return true;
  return size === n && bias.shape[bias.shape.length - 1] === n;
}

/**
 * Maps a flat index over the broadcast batch shape `outer` to the flat index into an operand with
 * batch shape `operand`. Shapes align on the right; size-1 and missing dimensions repeat.
 */
function broadcastIndex(outer: number[], operand: number[]): (index: number) => number {
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

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((acc, dim) => acc * dim, 1);
}

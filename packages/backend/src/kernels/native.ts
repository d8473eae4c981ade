import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { tf } from '../tf.js';
import { broadcastIndex } from './mat_mul.js';
import type { WasmBackend } from './wasm_backend.js';

/** The functions of the native addon (native/moebench_blas.c). */
interface NativeBlas {
  sgemmBatch(
    heap: ArrayBufferLike,
    transposeA: boolean,
    transposeB: boolean,
    m: number,
    n: number,
    k: number,
    aOffsets: Uint32Array,
    bOffsets: Uint32Array,
    cOffset: number,
  ): void;
  setThreads(threads: number): void;
  getThreads(): number;
  getConfig(): string;
}

/** Whether the native kernels loaded, and their BLAS facts. */
export interface NativeKernelStatus {
  /** Whether the addon loaded (it is built at install when a C compiler and OpenBLAS exist). */
  available: boolean;
  /** Reason it did not load, present when `available` is false. */
  reason?: string;
  /** Threads of the native kernels: MOEBENCH_NATIVE_THREADS, else one per core (`defaultNativeThreads`). */
  threads?: number;
  /** OpenBLAS build configuration, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64`. */
  blasConfig?: string;
}

const require = createRequire(import.meta.url);
// The same relative path from src/kernels and from dist/kernels.
const ADDON_PATH = '../../native/build/moebench_blas.node';

/**
 * Returns the thread count of the native kernels when MOEBENCH_NATIVE_THREADS is unset: one per core
 * the process may use (`os.availableParallelism()`). The addon runs OpenBLAS single-threaded and
 * splits each product over its own thread pool (native/pool.c), by batch entries, rows or columns.
 * OpenBLAS's own threading split the training step's narrow products badly: a [1024, 64] x [64, 264]
 * product took 0.32 ms on one thread and 0.38 ms on two OpenBLAS threads, on a 2-core AMD EPYC.
 */
export function defaultNativeThreads(): number {
  return Math.max(1, Math.min(MAX_NATIVE_THREADS, availableParallelism()));
}

/** Maximum thread count of the addon's pool (MB_MAX_THREADS in native/moebench.h). */
export const MAX_NATIVE_THREADS = 64;

/**
 * Reads MOEBENCH_NATIVE_THREADS: a whole number from 1 to 64 in decimal digits, or, when unset or
 * empty, `defaultNativeThreads()`.
 *
 * @throws RangeError naming the variable, the value received and the allowed range.
 */
export function nativeThreadsSetting(): number {
  const text = process.env.MOEBENCH_NATIVE_THREADS;
  if (text === undefined || text === '') return defaultNativeThreads();
  const threads = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(threads >= 1 && threads <= MAX_NATIVE_THREADS)) {
    throw new RangeError(`MOEBENCH_NATIVE_THREADS must be an integer from 1 to ${MAX_NATIVE_THREADS}, received "${text}"`);
  }
  return threads;
}

let loaded: { blas?: NativeBlas; status: NativeKernelStatus } | null = null;

/**
 * Loads the native addon once and sets its thread count. Throws for an invalid
 * MOEBENCH_NATIVE_THREADS. A missing addon is not an error, and the status then gives the reason.
 */
export function loadNativeKernels(): { blas?: NativeBlas; status: NativeKernelStatus } {
  if (loaded !== null) return loaded;
  const threads = nativeThreadsSetting();
  try {
    const blas = require(ADDON_PATH) as NativeBlas;
    blas.setThreads(threads);
    loaded = { blas, status: { available: true, threads: blas.getThreads(), blasConfig: blas.getConfig().trim() } };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    loaded = {
      status: {
        available: false,
        reason: `the addon did not load (${message}); build it with "node scripts/build-native.mjs" in @moebench/backend`,
      },
    };
  }
  return loaded;
}

type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu' | 'prelu';

/**
 * Builds a BatchMatMul (or, with `fused`, a _FusedMatMul) that runs OpenBLAS `cblas_sgemm` on the
 * wasm heap: operands and output stay where tfjs keeps them, and each batch entry is one sgemm call
 * with the transposes passed to BLAS. The fused variant adds the rank-1 bias and applies the
 * activation in JavaScript afterwards. Non-float32 inputs, empty dimensions, and bias or prelu
 * weights of rank above 1 go to `fallback` (the wasm replacement kernel).
 */
export function makeNativeMatMulKernel(blas: NativeBlas, fallback: tf.KernelFunc, fused = false): tf.KernelFunc {
  const kernel = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { a, b, bias, preluActivationWeights: prelu } = args.inputs as Record<string, tf.TensorInfo | undefined> & {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
    };
    const attrs = args.attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: Activation;
      leakyreluAlpha?: number;
    };
    const { transposeA, transposeB } = attrs;
    const m = transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
    const k = transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
    const kB = transposeB ? b.shape[b.shape.length - 1] : b.shape[b.shape.length - 2];
    const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const unsupported =
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      m * n * k === 0 ||
      k !== kB ||
      (bias !== undefined && bias.shape.length > 1) ||
      (prelu !== undefined && prelu.shape.length > 1);
    if (unsupported) return fallback(args as never) as tf.TensorInfo;

    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const batch = tf.util.sizeFromShape(outer);
    const out = backend.makeOutput([...outer, m, n], 'float32');

    // Views only after makeOutput, which may have grown (and so detached) the heap.
    const aView = backend.typedArrayFromHeap(a) as Float32Array;
    const bView = backend.typedArrayFromHeap(b) as Float32Array;
    const outView = backend.typedArrayFromHeap(out) as Float32Array;
    const indexA = broadcastIndex(outer, outerA);
    const indexB = broadcastIndex(outer, outerB);
    const aOffsets = new Uint32Array(batch);
    const bOffsets = new Uint32Array(batch);
    for (let i = 0; i < batch; i++) {
      aOffsets[i] = aView.byteOffset / 4 + indexA(i) * m * k;
      bOffsets[i] = bView.byteOffset / 4 + indexB(i) * k * n;
    }
    blas.sgemmBatch(outView.buffer, transposeA, transposeB, m, n, k, aOffsets, bOffsets, outView.byteOffset / 4);

    if (fused) {
      const biasValues = bias === undefined ? undefined : (backend.typedArrayFromHeap(bias) as Float32Array);
      const preluValues = prelu === undefined ? undefined : (backend.typedArrayFromHeap(prelu) as Float32Array);
      applyBiasAndActivation(outView, n, biasValues, attrs.activation ?? 'linear', attrs.leakyreluAlpha ?? 0, preluValues);
    }
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Adds a per-column bias (size n, or 1 to broadcast) to each row of `values` [rows, n] and applies
 * the activation in place. prelu weights broadcast the same way as the bias.
 */
function applyBiasAndActivation(
  values: Float32Array,
  n: number,
  bias: Float32Array | undefined,
  activation: Activation,
  alpha: number,
  prelu: Float32Array | undefined,
): void {
  if (bias !== undefined) {
    for (let offset = 0; offset < values.length; offset += n) {
      for (let j = 0; j < n; j++) values[offset + j] += bias[bias.length === 1 ? 0 : j];
    }
  }
  switch (activation) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < values.length; i++) if (values[i] < 0) values[i] = 0;
      return;
    case 'relu6':
      for (let i = 0; i < values.length; i++) values[i] = Math.min(Math.max(values[i], 0), 6);
      return;
    case 'sigmoid':
      for (let i = 0; i < values.length; i++) values[i] = 1 / (1 + Math.exp(-values[i]));
      return;
    case 'elu':
      for (let i = 0; i < values.length; i++) if (values[i] < 0) values[i] = Math.expm1(values[i]);
      return;
    case 'leakyrelu':
      for (let i = 0; i < values.length; i++) if (values[i] < 0) values[i] *= alpha;
      return;
    case 'prelu':
      if (prelu === undefined) throw new Error('_FusedMatMul: activation prelu needs preluActivationWeights');
      for (let i = 0; i < values.length; i++) {
        if (values[i] < 0) values[i] *= prelu[prelu.length === 1 ? 0 : i % n];
      }
      return;
    default:
      throw new Error(`_FusedMatMul: unknown activation "${String(activation)}"`);
  }
}

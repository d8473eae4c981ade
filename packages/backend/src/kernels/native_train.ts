import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * Name of the fused AdamW kernel. Inputs, for each variable i from 0: `param{i}`, `firstMoment{i}`,
 * `secondMoment{i}` and `gradient{i}`, float32 tensors of one shape. Attributes: `AdamWKernelAttrs`.
 * Outputs, per variable in input order: the new param, first moment and second moment (3 per
 * variable). Each element is updated in float32, in the order of `AdamWKernelAttrs`'s comment.
 */
export const ADAMW_KERNEL = 'MoebenchAdamW';

/**
 * Name of the sum-of-squares kernel. Inputs `x0`, `x1`, ... (float32, any shapes); output: a
 * float32 scalar, the sum of x^2 over every element of every input. Each square is rounded to
 * float32 and the squares are added in float64, in blocks that do not depend on the thread count.
 */
export const SUM_OF_SQUARES_KERNEL = 'MoebenchSumOfSquares';

/**
 * Name of the softmax cross-entropy kernel, over the last axis. Inputs: `logits` float32
 * [..., vocab] and `labels` int32 [...] in [0, vocab). Outputs, each of shape [...]: the negative
 * log-likelihood of the label, the row's maximum logit and log(sum(exp(logits - maximum))). The
 * last two are what the gradient kernel needs.
 */
export const SOFTMAX_CROSS_ENTROPY_KERNEL = 'MoebenchSoftmaxCrossEntropy';

/**
 * Name of the gradient of the softmax cross-entropy kernel. Inputs: `logits`, `labels`, `rowMax` and
 * `logSum` (the forward's second and third outputs) and `dy` [...]; output: dlogits [..., vocab] =
 * (softmax(logits) - onehot(labels)) * dy, row by row.
 */
export const SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL = 'MoebenchSoftmaxCrossEntropyGrad';

/**
 * Attributes of the fused AdamW kernel: the update's constants, folded by the caller, and which variables
 * decay. For each element, in float32 and in this order:
 *   m' = m beta1 + g gradientWeight1;  v' = v beta2 + g^2 gradientWeight2
 *   p' = (decays ? p decayFactor : p) - (m' / (sqrt(v') + epsilon)) stepSize
 */
export interface AdamWKernelAttrs {
  /** Decay of the first moment. */
  beta1: number;
  /** Weight of the gradient in the first moment, (1 - beta1) times any gradient scale. */
  gradientWeight1: number;
  /** Decay of the second moment. */
  beta2: number;
  /** Weight of the squared gradient in the second moment, (1 - beta2) times the gradient scale squared. */
  gradientWeight2: number;
  /** Added to sqrt(v') before dividing (bias correction folded in by the caller, if any). */
  epsilon: number;
  /** Multiplies m' / (sqrt(v') + epsilon): the learning rate with the bias corrections folded in. */
  stepSize: number;
  /** Multiplies the parameters of decaying variables before the update: 1 - learningRate * weightDecay. */
  decayFactor: number;
  /** One entry per variable, in input order: 1 where the variable decays, 0 where it does not. */
  decays: number[];
}

/** The functions of native/train.c in the addon. */
export interface NativeTrainFunctions {
  adamwUpdate(
    heap: ArrayBufferLike,
    table: Uint32Array,
    decays: Uint8Array,
    beta1: number,
    gradientWeight1: number,
    beta2: number,
    gradientWeight2: number,
    epsilon: number,
    stepSize: number,
    decayFactor: number,
  ): void;
  sumOfSquares(heap: ArrayBufferLike, table: Uint32Array, outOffset: number): void;
  /** Returns -1, or the first row whose label is outside [0, vocab) (then nothing is written). */
  softmaxCrossEntropy(
    heap: ArrayBufferLike,
    rows: number,
    vocab: number,
    logitsOffset: number,
    labelsOffset: number,
    nllOffset: number,
    maxOffset: number,
    logSumOffset: number,
  ): number;
  /** Returns -1, or the first row whose label is outside [0, vocab) (then nothing is written). */
  softmaxCrossEntropyGrad(
    heap: ArrayBufferLike,
    rows: number,
    vocab: number,
    logitsOffset: number,
    labelsOffset: number,
    maxOffset: number,
    logSumOffset: number,
    dyOffset: number,
    dlogitsOffset: number,
  ): number;
  /** Replaces each value by the native kernels' e^x (the exponential the softmax kernels use). */
  expInPlace(values: Float32Array): void;
}

/** Columns of the AdamW table passed to the addon: seven float offsets and the size, per variable. */
const ADAMW_COLUMNS = 8;

const ADAMW_CONSTANTS = ['beta1', 'gradientWeight1', 'beta2', 'gradientWeight2', 'epsilon', 'stepSize', 'decayFactor'] as const;
const ADAMW_INPUTS = ['param', 'firstMoment', 'secondMoment', 'gradient'] as const;

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Float offset of a tensor's data on the wasm heap. Call only after the last makeOutput of the kernel. */
function heapOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset / 4;
}

function requireInput(inputs: tf.NamedTensorInfoMap, name: string, kernel: string): tf.TensorInfo {
  const input = inputs[name];
  if (input === undefined) throw new Error(`${kernel}: missing input "${name}"`);
  return input;
}

function requireDtype(info: tf.TensorInfo, dtype: tf.DataType, name: string, kernel: string): void {
  if (info.dtype !== dtype) throw new TypeError(`${kernel}: ${name} must be ${dtype}, received ${info.dtype}`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, axis) => size === b[axis]);
}

function makeAdamWKernel(addon: NativeTrainFunctions): tf.KernelFunc {
  const kernel = ({ inputs, backend: anyBackend, attrs }: KernelArguments): tf.TensorInfo[] => {
    const backend = anyBackend as WasmBackend;
    const settings = attrs as unknown as AdamWKernelAttrs;
    for (const name of ADAMW_CONSTANTS) {
      const value = settings[name];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new RangeError(`${ADAMW_KERNEL}: attribute ${name} must be a finite number, received ${String(value)}`);
      }
    }
    const decays = settings.decays;
    if (!Array.isArray(decays)) throw new TypeError(`${ADAMW_KERNEL}: attribute decays must be an array of 0 and 1, one per variable`);
    const count = decays.length;
    if (Object.keys(inputs).length !== ADAMW_INPUTS.length * count) {
      throw new Error(
        `${ADAMW_KERNEL}: expected ${ADAMW_INPUTS.length * count} inputs (4 per entry of decays), received ${Object.keys(inputs).length}`,
      );
    }

    const variables: tf.TensorInfo[][] = [];
    for (let i = 0; i < count; i++) {
      const group = ADAMW_INPUTS.map((name) => requireInput(inputs, `${name}${i}`, ADAMW_KERNEL));
      group.forEach((info, column) => requireDtype(info, 'float32', `${ADAMW_INPUTS[column]}${i}`, ADAMW_KERNEL));
      for (let column = 1; column < group.length; column++) {
        if (!sameShape(group[column].shape, group[0].shape)) {
          throw new Error(
            `${ADAMW_KERNEL}: ${ADAMW_INPUTS[column]}${i} has shape [${group[column].shape}], expected [${group[0].shape}] as param${i}`,
          );
        }
      }
      if (decays[i] !== 0 && decays[i] !== 1) {
        throw new RangeError(`${ADAMW_KERNEL}: decays[${i}] must be 0 or 1, received ${String(decays[i])}`);
      }
      variables.push(group);
    }

    const outputs = variables.flatMap((group) => [0, 1, 2].map(() => backend.makeOutput([...group[0].shape], 'float32')));
    if (count === 0) return outputs;

    // Offsets only after the last makeOutput, which may have grown (and so moved) the heap.
    const table = new Uint32Array(count * ADAMW_COLUMNS);
    for (let i = 0; i < count; i++) {
      const row = i * ADAMW_COLUMNS;
      variables[i].forEach((info, column) => (table[row + column] = heapOffset(backend, info)));
      for (let column = 0; column < 3; column++) table[row + 4 + column] = heapOffset(backend, outputs[3 * i + column]);
      table[row + 7] = tf.util.sizeFromShape(variables[i][0].shape);
    }
    const heap = backend.typedArrayFromHeap(variables[0][0]).buffer;
    addon.adamwUpdate(
      heap,
      table,
      Uint8Array.from(decays),
      settings.beta1,
      settings.gradientWeight1,
      settings.beta2,
      settings.gradientWeight2,
      settings.epsilon,
      settings.stepSize,
      settings.decayFactor,
    );
    return outputs;
  };
  return kernel as unknown as tf.KernelFunc;
}

function makeSumOfSquaresKernel(addon: NativeTrainFunctions): tf.KernelFunc {
  const kernel = ({ inputs, backend: anyBackend }: KernelArguments): tf.TensorInfo => {
    const backend = anyBackend as WasmBackend;
    const count = Object.keys(inputs).length;
    const tensors: tf.TensorInfo[] = [];
    for (let i = 0; i < count; i++) {
      const info = requireInput(inputs, `x${i}`, SUM_OF_SQUARES_KERNEL);
      requireDtype(info, 'float32', `x${i}`, SUM_OF_SQUARES_KERNEL);
      tensors.push(info);
    }

    const out = backend.makeOutput([], 'float32');
    const outView = backend.typedArrayFromHeap(out) as Float32Array;
    const table = new Uint32Array(2 * count);
    tensors.forEach((info, i) => {
      table[2 * i] = heapOffset(backend, info);
      table[2 * i + 1] = tf.util.sizeFromShape(info.shape);
    });
    addon.sumOfSquares(outView.buffer, table, outView.byteOffset / 4);
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

/** Checks logits [..., vocab] float32 against labels [...] int32 and returns rows and vocab. */
function softmaxSizes(logits: tf.TensorInfo, labels: tf.TensorInfo, kernel: string): { rows: number; vocab: number } {
  requireDtype(logits, 'float32', 'logits', kernel);
  requireDtype(labels, 'int32', 'labels', kernel);
  if (logits.shape.length < 1) throw new RangeError(`${kernel}: logits must have rank >= 1, received a scalar`);
  const vocab = logits.shape[logits.shape.length - 1];
  if (vocab < 1) throw new RangeError(`${kernel}: the last axis of logits (the vocabulary) must have size >= 1, received shape [${logits.shape}]`);
  const rowShape = logits.shape.slice(0, -1);
  if (!sameShape(labels.shape, rowShape)) {
    throw new Error(`${kernel}: labels have shape [${labels.shape}], expected [${rowShape}] (logits [${logits.shape}] without the last axis)`);
  }
  return { rows: tf.util.sizeFromShape(rowShape), vocab };
}

/** Frees the outputs and throws for the row whose label the addon found outside [0, vocab). */
function rejectLabel(backend: WasmBackend, labels: tf.TensorInfo, row: number, vocab: number, outputs: tf.TensorInfo[], kernel: string): never {
  const value = (backend.typedArrayFromHeap(labels) as Int32Array)[row];
  for (const output of outputs) backend.disposeData(output.dataId);
  throw new RangeError(`${kernel}: labels must be integers in [0, ${vocab}), received ${value} at flat index ${row}`);
}

function makeSoftmaxCrossEntropyKernel(addon: NativeTrainFunctions): tf.KernelFunc {
  const kernel = ({ inputs, backend: anyBackend }: KernelArguments): tf.TensorInfo[] => {
    const backend = anyBackend as WasmBackend;
    const name = SOFTMAX_CROSS_ENTROPY_KERNEL;
    const logits = requireInput(inputs, 'logits', name);
    const labels = requireInput(inputs, 'labels', name);
    const { rows, vocab } = softmaxSizes(logits, labels, name);

    const rowShape = logits.shape.slice(0, -1);
    const outputs = [0, 1, 2].map(() => backend.makeOutput([...rowShape], 'float32'));
    if (rows === 0) return outputs;
    const [nll, rowMax, logSum] = outputs;
    const invalidRow = addon.softmaxCrossEntropy(
      backend.typedArrayFromHeap(logits).buffer,
      rows,
      vocab,
      heapOffset(backend, logits),
      heapOffset(backend, labels),
      heapOffset(backend, nll),
      heapOffset(backend, rowMax),
      heapOffset(backend, logSum),
    );
    if (invalidRow >= 0) rejectLabel(backend, labels, invalidRow, vocab, outputs, name);
    return outputs;
  };
  return kernel as unknown as tf.KernelFunc;
}

function makeSoftmaxCrossEntropyGradKernel(addon: NativeTrainFunctions): tf.KernelFunc {
  const kernel = ({ inputs, backend: anyBackend }: KernelArguments): tf.TensorInfo => {
    const backend = anyBackend as WasmBackend;
    const name = SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL;
    const logits = requireInput(inputs, 'logits', name);
    const labels = requireInput(inputs, 'labels', name);
    const { rows, vocab } = softmaxSizes(logits, labels, name);
    const rowShape = logits.shape.slice(0, -1);
    const perRow = (['rowMax', 'logSum', 'dy'] as const).map((inputName) => {
      const info = requireInput(inputs, inputName, name);
      requireDtype(info, 'float32', inputName, name);
      if (!sameShape(info.shape, rowShape)) {
        throw new Error(`${name}: ${inputName} has shape [${info.shape}], expected [${rowShape}] (logits [${logits.shape}] without the last axis)`);
      }
      return info;
    });

    const out = backend.makeOutput([...logits.shape], 'float32');
    if (rows === 0) return out;
    const [rowMax, logSum, dy] = perRow;
    const invalidRow = addon.softmaxCrossEntropyGrad(
      backend.typedArrayFromHeap(logits).buffer,
      rows,
      vocab,
      heapOffset(backend, logits),
      heapOffset(backend, labels),
      heapOffset(backend, rowMax),
      heapOffset(backend, logSum),
      heapOffset(backend, dy),
      heapOffset(backend, out),
    );
    if (invalidRow >= 0) rejectLabel(backend, labels, invalidRow, vocab, [out], name);
    return out;
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Builds the wasm kernel configs of the native addon's training kernels (native/train.c): the fused
 * AdamW update, the sum of squares, and softmax cross-entropy with its gradient. They are
 * registered only while the native kernels are active, so callers check `hasKernel(name)` and keep
 * a composite path. Returns no configs for an addon built before these kernels existed.
 */
export function trainKernelConfigs(addon: object): tf.KernelConfig[] {
  const functions = addon as NativeTrainFunctions;
  if (typeof functions.adamwUpdate !== 'function') return [];
  const config = (kernelName: string, kernelFunc: tf.KernelFunc): tf.KernelConfig => ({ kernelName, backendName: 'wasm', kernelFunc });
  return [
    config(ADAMW_KERNEL, makeAdamWKernel(functions)),
    config(SUM_OF_SQUARES_KERNEL, makeSumOfSquaresKernel(functions)),
    config(SOFTMAX_CROSS_ENTROPY_KERNEL, makeSoftmaxCrossEntropyKernel(functions)),
    config(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, makeSoftmaxCrossEntropyGradKernel(functions)),
  ];
}

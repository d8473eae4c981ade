import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * GELU in the tanh form, x * sigmoid(GELU_SCALE x (1 + GELU_CUBIC x^2)) with GELU_SCALE =
 * 2 sqrt(2 / pi) and GELU_CUBIC = 0.044715: input `x` (float32, any shape), output of x's shape.
 * Its registered gradient runs `GELU_GRAD_KERNEL`.
 */
export const GELU_KERNEL = 'MoebenchGelu';

/** The gradient of `GELU_KERNEL`: inputs `x` and `dy` (float32, equal shapes), output dx. */
export const GELU_GRAD_KERNEL = 'MoebenchGeluGrad';

/**
 * Layer normalisation over the last axis. Inputs: `x` [rows, columns] with `gamma` and `beta`
 * [columns], or `x` [groups, rows, columns] with `gamma` and `beta` [groups, columns] (one set per
 * group); attribute `epsilon` (a finite number > 0). Outputs: y of x's shape, then the mean and the
 * inverse standard deviation 1 / sqrt(variance + epsilon) of each row, of x's shape without its last
 * axis. Its registered gradient runs `LAYER_NORM_GRAD_KERNEL` and returns gradients for x, gamma
 * and beta from the gradient of y. The mean and inverse standard deviation outputs are for the
 * backward pass and are not differentiable: gradients that reach them are ignored.
 */
export const LAYER_NORM_KERNEL = 'MoebenchLayerNorm';

/**
 * The gradient of `LAYER_NORM_KERNEL`. Inputs: `x`, `dy` (x's shape), `gamma`, and the forward's
 * `mean` and `inverseStd`. Outputs: dx, dgamma and dbeta.
 */
export const LAYER_NORM_GRAD_KERNEL = 'MoebenchLayerNormGrad';

/**
 * Softmax over the last axis, with tfjs's steps: y = e / sum(e) with e = exp(v - max(v)) per row, where
 * v = x (rank 1 or more), or x + bias when the optional input `bias` [rows, columns] is given: then
 * x [..., rows, columns] (rank 2 or more) gets the bias added to each [rows, columns] slice, as an
 * attention mask is.
 * Output: y of x's shape. Its registered gradient runs `SOFTMAX_GRAD_KERNEL` and returns gradients
 * for x and bias.
 */
export const SOFTMAX_KERNEL = 'MoebenchSoftmax';

/**
 * The gradient of `SOFTMAX_KERNEL` over the last axis: inputs `y` (the softmax) and `dy` of equal
 * shapes, output dx = dy y - sum(dy y) y per row, the form of tfjs's softmax gradient.
 */
export const SOFTMAX_GRAD_KERNEL = 'MoebenchSoftmaxGrad';

/** The functions of native/fused.c. Offsets count float32 values from the start of the heap. */
interface NativeFused {
  geluForward(heap: ArrayBufferLike, xOffset: number, yOffset: number, count: number): void;
  geluBackward(heap: ArrayBufferLike, xOffset: number, dyOffset: number, dxOffset: number, count: number): void;
  layerNormForward(
    heap: ArrayBufferLike,
    groups: number,
    rows: number,
    columns: number,
    epsilon: number,
    xOffset: number,
    gammaOffset: number,
    betaOffset: number,
    yOffset: number,
    meanOffset: number,
    inverseStdOffset: number,
  ): void;
  layerNormBackward(
    heap: ArrayBufferLike,
    groups: number,
    rows: number,
    columns: number,
    xOffset: number,
    dyOffset: number,
    gammaOffset: number,
    meanOffset: number,
    inverseStdOffset: number,
    dxOffset: number,
    dgammaOffset: number,
    dbetaOffset: number,
  ): void;
  /** biasOffset is -1 for no bias. */
  softmaxForward(
    heap: ArrayBufferLike,
    outer: number,
    rows: number,
    columns: number,
    xOffset: number,
    biasOffset: number,
    yOffset: number,
  ): void;
  softmaxBackward(heap: ArrayBufferLike, rows: number, columns: number, yOffset: number, dyOffset: number, dxOffset: number): void;
}

const FUSED_FUNCTIONS = [
  'geluForward',
  'geluBackward',
  'layerNormForward',
  'layerNormBackward',
  'softmaxForward',
  'softmaxBackward',
] as const;

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * Builds the wasm kernel configs of the native addon's fused element-wise kernels (native/fused.c)
 * and registers their gradients with tfjs, once. The configs are registered only while the native
 * kernels are active, and ops check `hasKernel` before they use one. Returns no configs when the
 * addon lacks the functions (an addon built from older sources).
 */
export function fusedKernelConfigs(addon: object): tf.KernelConfig[] {
  const functions = addon as Partial<Record<(typeof FUSED_FUNCTIONS)[number], unknown>>;
  if (FUSED_FUNCTIONS.some((name) => typeof functions[name] !== 'function')) return [];
  const fused = addon as NativeFused;
  registerGradients();
  const config = (kernelName: string, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
    kernelName,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  });
  return [
    config(GELU_KERNEL, (args) => geluForward(fused, args)),
    config(GELU_GRAD_KERNEL, (args) => geluBackward(fused, args)),
    config(LAYER_NORM_KERNEL, (args) => layerNormForward(fused, args)),
    config(LAYER_NORM_GRAD_KERNEL, (args) => layerNormBackward(fused, args)),
    config(SOFTMAX_KERNEL, (args) => softmaxForward(fused, args)),
    config(SOFTMAX_GRAD_KERNEL, (args) => softmaxBackward(fused, args)),
  ];
}

/** Float offset of a tensor's first value on the heap. */
function offsetOf(view: tf.TypedArray): number {
  return view.byteOffset / 4;
}

function shapeText(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws a TypeError naming the kernel and input when `info` is not float32. */
function requireFloat32(kernel: string, name: string, info: tf.TensorInfo): void {
  if (info.dtype !== 'float32') {
    throw new TypeError(`${kernel}: ${name} must be float32, received ${info.dtype}`);
  }
}

function geluForward(fused: NativeFused, args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  requireFloat32(GELU_KERNEL, 'x', x);
  const out = backend.makeOutput(x.shape, 'float32');
  const count = tf.util.sizeFromShape(x.shape);
  if (count === 0) return out;

  // Views only after makeOutput, which may have grown (and so detached) the heap.
  const xView = backend.typedArrayFromHeap(x);
  const outView = backend.typedArrayFromHeap(out);
  fused.geluForward(outView.buffer, offsetOf(xView), offsetOf(outView), count);
  return out;
}

function geluBackward(fused: NativeFused, args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  requireFloat32(GELU_GRAD_KERNEL, 'x', x);
  requireFloat32(GELU_GRAD_KERNEL, 'dy', dy);
  if (!tf.util.arraysEqual(x.shape, dy.shape)) {
    throw new RangeError(`${GELU_GRAD_KERNEL}: dy must have x's shape ${shapeText(x.shape)}, received ${shapeText(dy.shape)}`);
  }
  const out = backend.makeOutput(x.shape, 'float32');
  const count = tf.util.sizeFromShape(x.shape);
  if (count === 0) return out;

  const xView = backend.typedArrayFromHeap(x);
  const dyView = backend.typedArrayFromHeap(dy);
  const outView = backend.typedArrayFromHeap(out);
  fused.geluBackward(outView.buffer, offsetOf(xView), offsetOf(dyView), offsetOf(outView), count);
  return out;
}

/** x's layout as [groups, rows, columns]: the row form is one group. */
interface LayerNormLayout {
  groups: number;
  rows: number;
  columns: number;
  /** Shape of gamma and beta, [columns] or [groups, columns]. */
  parameterShape: number[];
  /** Shape of the per-row outputs: x's shape without its last axis. */
  rowShape: number[];
}

/**
 * Checks x against gamma's shape: x [rows, columns] with gamma [columns], or x [groups, rows,
 * columns] with gamma [groups, columns]. Throws a RangeError naming the kernel otherwise.
 */
function layerNormLayout(kernel: string, x: tf.TensorInfo, gamma: tf.TensorInfo): LayerNormLayout {
  const rowForm = x.shape.length === 2 && gamma.shape.length === 1 && gamma.shape[0] === x.shape[1];
  const groupForm =
    x.shape.length === 3 && gamma.shape.length === 2 && gamma.shape[0] === x.shape[0] && gamma.shape[1] === x.shape[2];
  if (!rowForm && !groupForm) {
    throw new RangeError(
      `${kernel}: expected x [rows, columns] with gamma [columns], or x [groups, rows, columns] with gamma ` +
        `[groups, columns]; received x ${shapeText(x.shape)} and gamma ${shapeText(gamma.shape)}`,
    );
  }
  const [groups, rows, columns] = rowForm ? [1, x.shape[0], x.shape[1]] : (x.shape as [number, number, number]);
  return { groups, rows, columns, parameterShape: gamma.shape, rowShape: x.shape.slice(0, -1) };
}

/** Throws a RangeError naming the kernel when `info` does not have the shape `expected`. */
function requireShape(kernel: string, name: string, info: tf.TensorInfo, expected: number[]): void {
  if (!tf.util.arraysEqual(info.shape, expected)) {
    throw new RangeError(`${kernel}: ${name} must have shape ${shapeText(expected)}, received ${shapeText(info.shape)}`);
  }
}

function layerNormForward(fused: NativeFused, args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const { x, gamma, beta } = args.inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const { epsilon } = (args.attrs ?? {}) as { epsilon?: unknown };
  for (const [name, info] of [['x', x], ['gamma', gamma], ['beta', beta]] as const) {
    requireFloat32(LAYER_NORM_KERNEL, name, info);
  }
  const layout = layerNormLayout(LAYER_NORM_KERNEL, x, gamma);
  requireShape(LAYER_NORM_KERNEL, 'beta', beta, layout.parameterShape);
  // The kernel computes in float32, so epsilon must stay positive and finite after rounding.
  if (typeof epsilon !== 'number' || !(Math.fround(epsilon) > 0) || !Number.isFinite(Math.fround(epsilon))) {
    throw new RangeError(`${LAYER_NORM_KERNEL}: epsilon must be a finite number > 0 in float32, received ${String(epsilon)}`);
  }

  const y = backend.makeOutput(x.shape, 'float32');
  const mean = backend.makeOutput(layout.rowShape, 'float32');
  const inverseStd = backend.makeOutput(layout.rowShape, 'float32');
  if (tf.util.sizeFromShape(x.shape) === 0) return [y, mean, inverseStd];

  const [xView, gammaView, betaView, yView, meanView, inverseStdView] = [x, gamma, beta, y, mean, inverseStd].map((info) =>
    backend.typedArrayFromHeap(info),
  );
  fused.layerNormForward(
    yView.buffer,
    layout.groups,
    layout.rows,
    layout.columns,
    epsilon,
    offsetOf(xView),
    offsetOf(gammaView),
    offsetOf(betaView),
    offsetOf(yView),
    offsetOf(meanView),
    offsetOf(inverseStdView),
  );
  return [y, mean, inverseStd];
}

function layerNormBackward(fused: NativeFused, args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const inputs = args.inputs as Record<'x' | 'dy' | 'gamma' | 'mean' | 'inverseStd', tf.TensorInfo>;
  for (const name of ['x', 'dy', 'gamma', 'mean', 'inverseStd'] as const) {
    requireFloat32(LAYER_NORM_GRAD_KERNEL, name, inputs[name]);
  }
  const { x, dy, gamma, mean, inverseStd } = inputs;
  const layout = layerNormLayout(LAYER_NORM_GRAD_KERNEL, x, gamma);
  requireShape(LAYER_NORM_GRAD_KERNEL, 'dy', dy, x.shape);
  requireShape(LAYER_NORM_GRAD_KERNEL, 'mean', mean, layout.rowShape);
  requireShape(LAYER_NORM_GRAD_KERNEL, 'inverseStd', inverseStd, layout.rowShape);

  const dx = backend.makeOutput(x.shape, 'float32');
  const dgamma = backend.makeOutput(layout.parameterShape, 'float32');
  const dbeta = backend.makeOutput(layout.parameterShape, 'float32');
  if (tf.util.sizeFromShape(layout.parameterShape) === 0) return [dx, dgamma, dbeta];

  const [xView, dyView, gammaView, meanView, inverseStdView, dxView, dgammaView, dbetaView] = [
    x,
    dy,
    gamma,
    mean,
    inverseStd,
    dx,
    dgamma,
    dbeta,
  ].map((info) => backend.typedArrayFromHeap(info));
  fused.layerNormBackward(
    dxView.buffer,
    layout.groups,
    layout.rows,
    layout.columns,
    offsetOf(xView),
    offsetOf(dyView),
    offsetOf(gammaView),
    offsetOf(meanView),
    offsetOf(inverseStdView),
    offsetOf(dxView),
    offsetOf(dgammaView),
    offsetOf(dbetaView),
  );
  return [dx, dgamma, dbeta];
}

function softmaxForward(fused: NativeFused, args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, bias } = args.inputs as { x: tf.TensorInfo; bias?: tf.TensorInfo };
  requireFloat32(SOFTMAX_KERNEL, 'x', x);
  const minimumRank = bias === undefined ? 1 : 2;
  if (x.shape.length < minimumRank) {
    const what = bias === undefined ? 'x must have rank 1 or more' : 'x must have rank 2 or more with a bias';
    throw new RangeError(`${SOFTMAX_KERNEL}: ${what}, received ${shapeText(x.shape)}`);
  }
  // Without a bias, every row is its own slice.
  const [rows, columns] = bias === undefined ? [1, x.shape[x.shape.length - 1]] : x.shape.slice(-2);
  if (bias !== undefined) {
    requireFloat32(SOFTMAX_KERNEL, 'bias', bias);
    requireShape(SOFTMAX_KERNEL, 'bias', bias, [rows, columns]);
  }
  const out = backend.makeOutput(x.shape, 'float32');
  const count = tf.util.sizeFromShape(x.shape);
  if (count === 0) return out;

  const xView = backend.typedArrayFromHeap(x);
  const biasOffset = bias === undefined ? -1 : offsetOf(backend.typedArrayFromHeap(bias));
  const outView = backend.typedArrayFromHeap(out);
  const slices = count / (rows * columns);
  fused.softmaxForward(outView.buffer, slices, rows, columns, offsetOf(xView), biasOffset, offsetOf(outView));
  return out;
}

function softmaxBackward(fused: NativeFused, args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackend;
  const { y, dy } = args.inputs as { y: tf.TensorInfo; dy: tf.TensorInfo };
  requireFloat32(SOFTMAX_GRAD_KERNEL, 'y', y);
  requireFloat32(SOFTMAX_GRAD_KERNEL, 'dy', dy);
  if (y.shape.length < 1) throw new RangeError(`${SOFTMAX_GRAD_KERNEL}: y must have rank 1 or more, received []`);
  requireShape(SOFTMAX_GRAD_KERNEL, 'dy', dy, y.shape);
  const out = backend.makeOutput(y.shape, 'float32');
  const count = tf.util.sizeFromShape(y.shape);
  if (count === 0) return out;

  const columns = y.shape[y.shape.length - 1];
  const [yView, dyView, outView] = [y, dy, out].map((info) => backend.typedArrayFromHeap(info));
  fused.softmaxBackward(outView.buffer, count / columns, columns, offsetOf(yView), offsetOf(dyView), offsetOf(outView));
  return out;
}

/** Registers the gradients of the GELU, layer-norm and softmax kernels, unless registered already. */
function registerGradients(): void {
  if (tf.getGradient(GELU_KERNEL) === undefined) {
    tf.registerGradient({
      kernelName: GELU_KERNEL,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => {
        const [x] = saved;
        return { x: () => tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy: dy as tf.Tensor }) as tf.Tensor };
      },
    });
  }
  if (tf.getGradient(LAYER_NORM_KERNEL) === undefined) {
    tf.registerGradient({
      kernelName: LAYER_NORM_KERNEL,
      inputsToSave: ['x', 'gamma'],
      outputsToSave: [false, true, true],
      gradFunc: (dys, saved) => {
        // One kernel computes all three gradients. tfjs calls each input's function in a tidy of
        // its own, so the kernel runs here, in the backward pass's tidy, which disposes any
        // gradient that no input takes.
        const [x, gamma, mean, inverseStd] = saved;
        const dy = (dys as tf.Tensor[])[0];
        const [dx, dgamma, dbeta] = tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { x, dy, gamma, mean, inverseStd }) as tf.Tensor[];
        return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
      },
    });
  }
  if (tf.getGradient(SOFTMAX_KERNEL) === undefined) {
    tf.registerGradient({
      kernelName: SOFTMAX_KERNEL,
      outputsToSave: [true],
      gradFunc: (dy, saved) => {
        // As for the layer norm, the kernel runs once here, and both inputs' gradients come from it.
        const [y] = saved;
        const dx = tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y, dy: dy as tf.Tensor }) as tf.Tensor;
        const leadingAxes = y.shape.slice(0, -2).map((_, axis) => axis);
        // A separate tensor even for rank 2: tfjs may dispose one input's gradient after adding it up.
        return { x: () => dx, bias: () => (leadingAxes.length === 0 ? tf.clone(dx) : tf.sum(dx, leadingAxes)) };
      },
    });
  }
}

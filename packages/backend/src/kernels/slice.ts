import { tf } from '../tf.js';
import type { WasmBackend } from './wasm_backend.js';

/**
 * Copies the box `begin .. begin + size` of `x` into a new tensor of shape `outShape` (the box's
 * shape, or the same elements under another shape, as Unpack needs). Only the box is read: the
 * stock wasm Slice first copies the whole input out of the heap with `readSync`, so taking 8 rows
 * of a [4096, 256] tensor cost a copy of all 4096 rows.
 *
 * The box is read as runs of contiguous elements. Trailing axes that the box spans whole merge
 * into the run of the innermost axis it cuts. A slice of leading rows is therefore one
 * `TypedArray.set`, and a slice that cuts a middle axis is one copy per index of the axes before
 * it. `begin` and `size` must be resolved (no -1) and inside `x`.
 */
function copyRegion(backend: WasmBackend, x: tf.TensorInfo, begin: readonly number[], size: readonly number[], outShape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  const total = tf.util.sizeFromShape(size as number[]);
  if (total === 0) return out;

  // Views only after makeOutput, which may have grown (and so detached) the heap.
  const result = backend.typedArrayFromHeap(out);
  const source = backend.typedArrayFromHeap(x);
  const rank = x.shape.length;
  if (rank === 0) {
    result[0] = source[0];
    return out;
  }

  // The innermost axis the box does not span whole (axis 0 when it spans them all).
  let cut = rank - 1;
  while (cut > 0 && begin[cut] === 0 && size[cut] === x.shape[cut]) cut--;
  // computeStrides leaves out the innermost axis's stride, which is 1.
  const strides = [...tf.util.computeStrides(x.shape), 1];
  const run = size[cut] * strides[cut];
  let start = 0;
  for (let axis = 0; axis <= cut; axis++) start += begin[axis] * strides[axis];

  // Odometer over the axes before `cut`: index[axis] counts 0 .. size[axis] - 1.
  const index = new Array<number>(cut).fill(0);
  let offset = start;
  for (let target = 0; target < total; target += run) {
    result.set(source.subarray(offset, offset + run), target);
    offset = advanceOdometer(index, size, strides, offset);
  }
  return out;
}

/**
 * Moves the multi-index `index` (over its own length of axes, the last fastest) to the next position
 * inside `size`, wrapping axes that reach their size, and returns `offset` moved by `steps[axis]` per
 * step of each axis.
 */
function advanceOdometer(index: number[], size: readonly number[], steps: readonly number[], offset: number): number {
  for (let axis = index.length - 1; axis >= 0; axis--) {
    index[axis]++;
    offset += steps[axis];
    if (index[axis] < size[axis]) return offset;
    offset -= index[axis] * steps[axis];
    index[axis] = 0;
  }
  return offset;
}

/**
 * Copies `x[begin[a] + i[a] * strides[a]]` for every index `i` of a box of shape `size` into a new
 * tensor of shape `outShape` (the same element count), element by element. `begin`, `strides` and
 * `size` come from `slice_util.sliceInfo` and stay inside `x`. The StridedSlice replacement uses it
 * for int32 and bool inputs with other strides than 1, for which the stock kernel returns float32
 * reinterpretations of the input's bits (tfjs-backend-wasm 4.22).
 */
function copyStrided(
  backend: WasmBackend,
  x: tf.TensorInfo,
  begin: readonly number[],
  strides: readonly number[],
  size: readonly number[],
  outShape: number[],
): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  const total = tf.util.sizeFromShape(size as number[]);
  if (total === 0) return out;

  // Views only after makeOutput, which may have grown (and so detached) the heap.
  const result = backend.typedArrayFromHeap(out);
  const source = backend.typedArrayFromHeap(x);
  const rank = x.shape.length;
  // computeStrides leaves out the innermost axis's stride, which is 1.
  const xStrides = [...tf.util.computeStrides(x.shape), 1];
  // Step in the input per step of each output index, and the input offset of the first element.
  const steps = xStrides.map((stride, axis) => stride * strides[axis]);
  let offset = 0;
  for (let axis = 0; axis < rank; axis++) offset += begin[axis] * xStrides[axis];

  const index = new Array<number>(rank).fill(0);
  for (let target = 0; target < total; target++) {
    result[target] = source[offset];
    offset = advanceOdometer(index, size, steps, offset);
  }
  return out;
}

/**
 * Resolves a Slice's `begin` and `size` attributes against `x` (a size of -1 runs to the end of
 * its axis) and checks that the box lies inside `x`.
 *
 * @throws RangeError naming the axis, the begin and size received and the axis length.
 */
function resolveBox(kernel: string, x: tf.TensorInfo, begin: number | number[], size: number | number[] | undefined): [number[], number[]] {
  const [resolvedBegin, resolvedSize] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  for (let axis = 0; axis < x.shape.length; axis++) {
    const from = resolvedBegin[axis];
    const count = resolvedSize[axis];
    if (!(from >= 0 && count >= 0 && from + count <= x.shape[axis])) {
      throw new RangeError(
        `${kernel}: invalid box on axis ${axis} of length ${x.shape[axis]}: begin ${from}, size ${count}; ` +
          `expected 0 <= begin and begin + size <= ${x.shape[axis]}`,
      );
    }
  }
  return [resolvedBegin, resolvedSize];
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Whether a kernel should leave `x` to the stock implementation (its views cannot hold strings). */
function stockOnly(x: tf.TensorInfo): boolean {
  return x.dtype === 'string' || x.dtype === 'complex64';
}

/**
 * Builds a Slice for the wasm backend that reads only the region it returns (see `copyRegion`).
 * Inputs `x` (float32, int32 or bool); attributes `begin` and `size`. String tensors go to the
 * stock kernel.
 */
export function makeSliceKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (stockOnly(x)) return stock(args as never) as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
    const [from, count] = resolveBox('Slice', x, begin, size);
    return copyRegion(args.backend as WasmBackend, x, from, count, count);
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Builds a SplitV (`tf.split`) for the wasm backend that copies each piece straight from the input.
 * The stock kernel calls the stock Slice once per piece, so splitting into n pieces copied the
 * whole input n times. Attributes `numOrSizeSplits` (a count of equal pieces, or the sizes, one of
 * which may be -1) and `axis`. String tensors go to the stock kernel.
 */
export function makeSplitKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (stockOnly(x)) return stock(args as never) as tf.TensorInfo[];
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const [splitAxis] = tf.util.parseAxisParam(axis, x.shape);
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, splitAxis);
    const backend = args.backend as WasmBackend;
    const begin = new Array<number>(x.shape.length).fill(0);
    const outputs: tf.TensorInfo[] = [];
    for (const [piece, length] of sizes.entries()) {
      if (!(length >= 0 && begin[splitAxis] + length <= x.shape[splitAxis])) {
        for (const done of outputs) backend.disposeData(done.dataId);
        throw new RangeError(
          `SplitV: invalid sizes ${JSON.stringify(sizes)}: piece ${piece} of size ${length} at offset ${begin[splitAxis]} ` +
            `exceeds axis ${splitAxis} of length ${x.shape[splitAxis]}`,
        );
      }
      const size = [...x.shape];
      size[splitAxis] = length;
      outputs.push(copyRegion(backend, x, begin, size, size));
      begin[splitAxis] += length;
    }
    return outputs;
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Builds an Unpack (`tf.unstack`) for the wasm backend that copies each output straight from the
 * input. The stock kernel calls the stock Slice once per output, so unstacking n entries copied
 * the whole input n times. Input `value`; attribute `axis` (negative counts from the end). String
 * tensors go to the stock kernel.
 */
export function makeUnpackKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo[] => {
    const { value } = args.inputs as { value: tf.TensorInfo };
    if (stockOnly(value)) return stock(args as never) as tf.TensorInfo[];
    const { axis } = args.attrs as unknown as { axis: number };
    const [unpackAxis] = tf.util.parseAxisParam(axis, value.shape);
    const backend = args.backend as WasmBackend;
    const outShape = value.shape.filter((_, i) => i !== unpackAxis);
    const begin = new Array<number>(value.shape.length).fill(0);
    const size = [...value.shape];
    size[unpackAxis] = 1;
    const outputs: tf.TensorInfo[] = [];
    for (let entry = 0; entry < value.shape[unpackAxis]; entry++) {
      begin[unpackAxis] = entry;
      outputs.push(copyRegion(backend, value, begin, size, outShape));
    }
    return outputs;
  };
  return kernel as unknown as tf.KernelFunc;
}

/**
 * Builds a StridedSlice for the wasm backend whose unit-stride case copies only the region it
 * returns. The stock kernel sends that case (every stride 1, or a cut along axis 0 only) to the
 * stock Slice, which copies the whole input first. Other strides on int32 and bool inputs are
 * copied element by element (see `copyStrided`). Other strides on float32, identities (which the
 * stock kernel handles by sharing the input's buffer) and string tensors go to the stock kernel.
 */
export function makeStridedSliceKernel(stock: tf.KernelFunc): tf.KernelFunc {
  const kernel = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (stockOnly(x)) return stock(args as never) as tf.TensorInfo;
    const attrs = args.attrs as unknown as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    const info = tf.slice_util.sliceInfo(
      x.shape,
      attrs.begin,
      attrs.end,
      attrs.strides,
      attrs.beginMask,
      attrs.endMask,
      attrs.ellipsisMask,
      attrs.newAxisMask,
      attrs.shrinkAxisMask,
    );
    const unitStrides = info.sliceDim0 || info.isSimpleSlice;
    if (info.isIdentity || (!unitStrides && x.dtype === 'float32')) return stock(args as never) as tf.TensorInfo;

    // Per axis of x: how many elements the slice takes (a begin past its end takes none).
    const size = tf.slice_util.computeOutShape(info.begin, info.end, info.strides).map((length) => Math.max(0, length));
    const backend = args.backend as WasmBackend;
    if (!unitStrides) return copyStrided(backend, x, info.begin, info.strides, size, info.finalShape);
    // With unit strides the region is begin .. begin + size on each axis.
    const [from, count] = resolveBox('StridedSlice', x, info.begin, size);
    return copyRegion(backend, x, from, count, info.finalShape);
  };
  return kernel as unknown as tf.KernelFunc;
}

import { initBackend, Rng, tf, wasmKernelState } from '@moebench/backend';
import { describe, expect, it } from 'vitest';
import { causalAttention, type AttentionShape, type RowOrder } from '../src/attention.js';

/** The backends and kernel sets the op must agree on; the reference always runs on cpu. */
const BACKENDS = [
  { label: 'cpu', name: 'cpu', options: {} },
  { label: 'wasm', name: 'wasm', options: {} },
  { label: 'wasm without native kernels', name: 'wasm', options: { nativeKernels: false } },
] as const;

/** [batch, time, heads, d]: one position, odd sizes, and a size whose products take the multi-thread path. */
const SHAPES: Array<[number, number, number, number]> = [
  [1, 1, 1, 3],
  [3, 5, 2, 6],
  [2, 7, 3, 9],
  [8, 64, 4, 64],
];

interface Inputs {
  shape: AttentionShape;
  dModel: number;
  /** Batch-major rows [batch * time, d]. */
  x: Float32Array;
  kernel: Float32Array;
  bias: Float32Array;
  /** Upstream gradient of the output, batch-major [batch * time, d]. */
  upstream: Float32Array;
}

function makeInputs(seed: number, [batch, time, heads, dModel]: [number, number, number, number]): Inputs {
  const rng = new Rng(seed);
  const draw = (size: number, bound: number) => Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * bound);
  return {
    shape: { batch, time, heads },
    dModel,
    x: draw(batch * time * dModel, 2),
    kernel: draw(dModel * 3 * dModel, 1),
    bias: draw(3 * dModel, 0.5),
    upstream: draw(batch * time * dModel, 1),
  };
}

/** [time, time]: 0 on and below the diagonal, -1e9 above it, as the Transformer builds it. */
function causalMask(time: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([time, time]), -1, 0)), -1e9)) as tf.Tensor2D;
}

/** Reorders rows [batch * time, width] between batch-major and time-major. */
function reorderRows(values: Float32Array, batch: number, time: number, width: number, to: RowOrder): Float32Array {
  const out = new Float32Array(values.length);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < time; t++) {
      const batchMajor = (b * time + t) * width;
      const timeMajor = (t * batch + b) * width;
      const [from, into] = to === 'time-major' ? [batchMajor, timeMajor] : [timeMajor, batchMajor];
      out.set(values.subarray(from, from + width), into);
    }
  }
  return out;
}

/** Attention with the stock ops and tfjs's autodiff, batch-major rows: the composite the op replaces. */
function compositeAttention(x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D, mask: tf.Tensor2D, shape: AttentionShape): tf.Tensor2D {
  const { batch, time, heads } = shape;
  const dModel = x.shape[1];
  const headWidth = dModel / heads;
  const [q, k, v] = tf.split(tf.add(tf.matMul(x, kernel), bias), 3, 1).map(
    (part) => tf.reshape(tf.transpose(tf.reshape(part, [batch, time, heads, headWidth]), [0, 2, 1, 3]), [batch * heads, time, headWidth]) as tf.Tensor3D,
  );
  const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(headWidth)), k, false, true), mask);
  const mixed = tf.matMul(tf.softmax(scores), v);
  return tf.reshape(tf.transpose(tf.reshape(mixed, [batch, heads, time, headWidth]), [0, 2, 1, 3]), [batch * time, dModel]) as tf.Tensor2D;
}

type Attention = (x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D, mask: tf.Tensor2D) => tf.Tensor2D;

/**
 * Runs `attention` and returns its output and the gradients of sum(output * upstream) for x, kernel
 * and bias, as arrays. The output and the x gradient are in `rowOrder`.
 */
function run(inputs: Inputs, attention: Attention, rowOrder: RowOrder): Float32Array[] {
  const { shape, dModel } = inputs;
  const rows = shape.batch * shape.time;
  const inOrder = (values: Float32Array) => (rowOrder === 'time-major' ? reorderRows(values, shape.batch, shape.time, dModel, 'time-major') : values);
  return tf.tidy(() => {
    const x = tf.tensor2d(inOrder(inputs.x), [rows, dModel]);
    const kernel = tf.tensor2d(inputs.kernel, [dModel, 3 * dModel]);
    const bias = tf.tensor1d(inputs.bias);
    const upstream = tf.tensor2d(inOrder(inputs.upstream), [rows, dModel]);
    const mask = causalMask(shape.time);
    const output = attention(x, kernel, bias, mask);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(attention(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor1D, mask), upstream)),
    )([x, kernel, bias]);
    return [output, ...grads].map((tensor) => tensor.dataSync() as Float32Array);
  });
}

/** Computes the composite's output and gradients on the cpu backend, batch-major. */
async function reference(inputs: Inputs): Promise<Float32Array[]> {
  await initBackend('cpu');
  return run(inputs, (x, kernel, bias, mask) => compositeAttention(x, kernel, bias, mask, inputs.shape), 'batch-major');
}

/** Largest |a - b| over entries that are finite in both; NaN and infinities must sit at the same entries. */
function maxDifference(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    if (!Number.isFinite(expected[i]) || !Number.isFinite(actual[i])) {
      expect(String(actual[i]), `entry ${i}`).toBe(String(expected[i]));
      continue;
    }
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  return worst;
}

const LABELS = ['output', 'gradient of x', 'gradient of kernel', 'gradient of bias'];

describe.each(BACKENDS)('causalAttention on $label', ({ name, options }) => {
  describe.each(['batch-major', 'time-major'] as const)('%s rows', (rowOrder) => {
    it.each(SHAPES)('matches the composite at batch %i, time %i, heads %i, d %i', async (...size) => {
      const inputs = makeInputs(size.reduce((a, b) => a * 31 + b, 7), size);
      const expected = await reference(inputs);
      await initBackend(name, options);
      const actual = run(inputs, (x, kernel, bias, mask) => causalAttention(x, kernel, bias, mask, inputs.shape, rowOrder), rowOrder);
      const { batch, time } = inputs.shape;
      const dModel = inputs.dModel;
      // Output and dx come back in the op's row order: compare them batch-major.
      const comparable = actual.map((values, i) => (rowOrder === 'time-major' && i < 2 ? reorderRows(values, batch, time, dModel, 'batch-major') : values));
      comparable.forEach((values, i) => {
        const scale = Math.max(1, ...expected[i].map(Math.abs));
        expect(maxDifference(values, expected[i]) / scale, LABELS[i]).toBeLessThan(2e-5);
      });
    });
  });

  it('propagates NaN and infinity as the composite does', async () => {
    const inputs = makeInputs(11, [2, 5, 2, 6]);
    // A NaN in the input of sequence 0, position 2, and an infinite bias entry of one key channel.
    inputs.x[(0 * 5 + 2) * 6 + 1] = Number.NaN;
    inputs.bias[6 + 4] = Number.POSITIVE_INFINITY;
    const expected = await reference(inputs);
    await initBackend(name, options);
    const actual = run(inputs, (x, kernel, bias, mask) => causalAttention(x, kernel, bias, mask, inputs.shape, 'batch-major'), 'batch-major');
    expect(expected[0].some(Number.isNaN)).toBe(true);
    actual.forEach((values, i) => expect(maxDifference(values, expected[i]), LABELS[i]).toBeLessThan(1e-4));
  });

  it('leaks no tensors', async () => {
    await initBackend(name, options);
    const inputs = makeInputs(5, [2, 4, 2, 8]);
    run(inputs, (x, kernel, bias, mask) => causalAttention(x, kernel, bias, mask, inputs.shape, 'time-major'), 'time-major');
    const count = tf.memory().numTensors;
    run(inputs, (x, kernel, bias, mask) => causalAttention(x, kernel, bias, mask, inputs.shape, 'time-major'), 'time-major');
    expect(tf.memory().numTensors).toBe(count);
  });
});

const nativeAvailable = (await initBackend('wasm')) && wasmKernelState().nativeStatus.available;

describe('causalAttention kernel choice', () => {
  const kernelsRun = async (options: { nativeKernels: boolean; fusedKernels?: boolean }): Promise<string[]> => {
    await initBackend('wasm', { stockKernels: false, ...options });
    const inputs = makeInputs(3, [2, 4, 2, 8]);
    const profile = await tf.profile(() => {
      run(inputs, (x, kernel, bias, mask) => causalAttention(x, kernel, bias, mask, inputs.shape, 'batch-major'), 'batch-major');
    });
    return profile.kernels.map((kernel) => kernel.name);
  };

  // Runs where the addon was built at install (a C compiler and OpenBLAS were present), as in CI.
  it.runIf(nativeAvailable)('runs the fused softmax with the native kernels', async () => {
    const names = await kernelsRun({ nativeKernels: true, fusedKernels: true });
    expect(names).toContain('MoebenchSoftmax');
    expect(names).toContain('MoebenchSoftmaxGrad');
    expect(names).not.toContain('Softmax');
  });

  it('runs the tfjs softmax without them', async () => {
    const names = await kernelsRun({ nativeKernels: false });
    expect(names).toContain('Softmax');
    expect(names).not.toContain('MoebenchSoftmax');
  });
});

describe('causalAttention input checks', () => {
  it('rejects mismatched shapes', async () => {
    await initBackend('cpu');
    const [x, kernel, bias, mask] = [tf.zeros([6, 4]), tf.zeros([4, 12]), tf.zeros([12]), causalMask(3)] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
    expect(() => causalAttention(x, kernel, bias, mask, { batch: 2, time: 3, heads: 3 }, 'batch-major')).toThrow(
      /x must be \[batch \* time, d\] = \[6, d\] with 3 heads dividing d.*received x \[6, 4\], kernel \[4, 12\], bias \[12\]/,
    );
    expect(() => causalAttention(x, kernel, bias, mask, { batch: 3, time: 3, heads: 2 }, 'batch-major')).toThrow(/= \[9, d\]/);
    expect(() => causalAttention(x, tf.zeros([4, 8]) as tf.Tensor2D, bias, mask, { batch: 2, time: 3, heads: 2 }, 'batch-major')).toThrow(
      /kernel \[4, 8\]/,
    );
    expect(() => causalAttention(x, kernel, bias, causalMask(2), { batch: 2, time: 3, heads: 2 }, 'batch-major')).toThrow(
      /mask must be \[3, 3\], received \[2, 2\]/,
    );
  });
});

import { tf } from '@moebench/backend';

/** The tfjs kernels that run matrix products (tf.matMul, tf.dot and tf.fused.matMul dispatch to them). */
const MATMUL_KERNELS = new Set(['BatchMatMul', '_FusedMatMul']);

/** Multiply-adds of the matrix products one call ran, from the shapes tfjs's profiler recorded. */
export interface MatMulCount {
  /** Sum over every matrix-product kernel of (output elements) x (inner dimension). */
  multiplyAdds: number;
  /** Matrix-product kernels that ran. */
  kernels: number;
  /** Names of kernels that ran and are not counted, for checking that nothing was missed. */
  otherKernels: string[];
}

/**
 * Runs `fn` under `tf.profile` and counts the multiply-adds of every matrix product it ran, from the
 * recorded input and output shapes: for an output [..., m, n] and a first input of size
 * batchA x m x k (batchA the product of its leading axes, whichever of its last two axes is m), the
 * kernel ran (output size) x k multiply-adds. This measures what the forward pass executed, so it is
 * independent of the accounting formulas it is compared with. Tensors `fn` returns are disposed.
 */
export async function countMatMulMultiplyAdds(fn: () => tf.TensorContainer): Promise<MatMulCount> {
  const profile = await tf.profile(() => fn());
  tf.dispose(profile.result as tf.TensorContainer);

  let multiplyAdds = 0;
  let kernels = 0;
  const otherKernels = new Set<string>();
  for (const kernel of profile.kernels) {
    if (!MATMUL_KERNELS.has(kernel.name)) {
      otherKernels.add(kernel.name);
      continue;
    }
    const [aShape] = kernel.inputShapes;
    const [outShape] = kernel.outputShapes;
    const m = outShape[outShape.length - 2];
    const batchA = aShape.slice(0, -2).reduce((product, size) => product * size, 1);
    const aSize = aShape.reduce((product, size) => product * size, 1);
    const inner = aSize / (batchA * m);
    const outSize = outShape.reduce((product, size) => product * size, 1);
    multiplyAdds += outSize * inner;
    kernels++;
  }
  return { multiplyAdds, kernels, otherKernels: [...otherKernels].sort() };
}

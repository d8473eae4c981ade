import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createGmlpBlock, createSmoe } from '../src/index.js';

/**
 * Compares the gradient tfjs computes with central differences of the loss, for `probes` entries
 * of every variable. Returns the worst absolute error over the probes, and the largest gradient
 * entry probed, so the caller can see the check is not comparing zeros.
 */
async function checkGradients(
  variables: tf.Variable[],
  loss: () => tf.Scalar,
  probes: number,
  step = 3e-3,
): Promise<{ worstError: number; largestGradient: number }> {
  const { value, grads } = tf.variableGrads(loss, variables);
  value.dispose();
  const rng = new Rng(99);
  let worstError = 0;
  let largestGradient = 0;
  for (const variable of variables) {
    const analytic = await grads[variable.name].data();
    const original = await variable.data();
    for (let probe = 0; probe < probes; probe++) {
      const index = rng.int(original.length);
      const evaluate = async (shift: number) => {
        const shifted = original.slice();
        shifted[index] += shift;
        variable.assign(tf.tensor(shifted, variable.shape));
        const result = tf.tidy(loss);
        const number = (await result.data())[0];
        result.dispose();
        return number;
      };
      const numeric = ((await evaluate(step)) - (await evaluate(-step))) / (2 * step);
      variable.assign(tf.tensor(original, variable.shape));
      worstError = Math.max(worstError, Math.abs(numeric - analytic[index]));
      largestGradient = Math.max(largestGradient, Math.abs(analytic[index]));
    }
  }
  tf.dispose(Object.values(grads));
  return { worstError, largestGradient };
}

describe('finite differences on cpu', () => {
  it('match the gMLP block gradients', async () => {
    await initBackend('cpu');
    const block = createGmlpBlock({ dModel: 3, maxSeqLen: 4, hiddenSize: 4, initStd: 0.5, seed: 1 });
    // Spatial weights far from their near-zero init, so the mixing path carries real gradient.
    block.trainableVariables[4].assign(new Rng(2).uniform([4, 4], -0.5, 0.5) as tf.Tensor2D);
    const x = new Rng(3).uniform([2, 4, 3], -1, 1) as tf.Tensor3D;
    const weights = new Rng(4).uniform([2, 4, 3], -1, 1);
    const loss = () => tf.sum(tf.mul(block.apply(x), weights)) as tf.Scalar;
    const { worstError, largestGradient } = await checkGradients(block.trainableVariables, loss, 3);
    expect(largestGradient).toBeGreaterThan(0.1);
    expect(worstError).toBeLessThan(5e-3);
    tf.dispose([x, weights]);
    block.dispose();
  });

  it('match the sMoE gradients with partial prediction', async () => {
    await initBackend('cpu');
    const smoe = createSmoe({ dModel: 3, maxSeqLen: 5, numExperts: 2, hiddenSize: 4, routing: 'partial-prediction', prefixFraction: 0.4, initStd: 0.5, seed: 5 });
    smoe.trainableVariables[4].assign(new Rng(6).uniform([2, 5, 5], -0.5, 0.5) as tf.Tensor3D);
    // A router with a clear preference, so no probe step flips the assignment.
    smoe.trainableVariables[8].assign(tf.tensor2d([[3, -3], [-3, 3]]));
    const x = new Rng(7).uniform([2, 5, 3], -1, 1) as tf.Tensor3D;
    const weights = new Rng(8).uniform([2, 5, 3], -1, 1);
    const assignmentOf = () => tf.tidy(() => Array.from(smoe.apply(x).assignment as Int32Array));
    const before = assignmentOf();
    const loss = () => tf.sum(tf.mul(smoe.apply(x).output, weights)) as tf.Scalar;
    const { worstError, largestGradient } = await checkGradients(smoe.trainableVariables, loss, 3);
    expect(assignmentOf()).toEqual(before);
    expect(largestGradient).toBeGreaterThan(0.1);
    expect(worstError).toBeLessThan(5e-3);
    tf.dispose([x, weights]);
    smoe.dispose();
  });
});

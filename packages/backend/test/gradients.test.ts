import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/index.js';
import { expectClose, runOn, values } from './compare.js';

describe('gradient fixes', () => {
  it('sums broadcast matMul gradients like tile', async () => {
    for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const aShape = transposeA ? [3, 4, 2] : [3, 2, 4];
      const bShape = transposeB ? [1, 5, 4] : [1, 4, 5];
      const build = (tiled: boolean) => () => {
        const a = tf.tensor(values(24, 1), aShape);
        const b = tf.tensor(values(20, 2), bShape);
        const weights = tf.tensor(values(30, 3), [3, 2, 5]);
        const loss = (x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(x, tiled ? tf.tile(y, [3, 1, 1]) : y, transposeA, transposeB), weights));
        return tf.grads(loss)([a, b]);
      };
      const broadcast = await runOn('cpu', build(false));
      const reference = await runOn('cpu', build(true));
      expect(broadcast[1].shape).toEqual(bShape);
      expectClose(broadcast, reference, 1e-5);
    }
  });

  it('sums over missing leading axes', async () => {
    const [gradA] = await runOn('cpu', () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.matMul(a, b)))([tf.ones([2, 3]), tf.ones([4, 3, 5])]),
    );
    // d/da of sum over 4 batches of a @ b with b all ones: every entry is 4 batches x 5 columns.
    expect(gradA.shape).toEqual([2, 3]);
    expect(gradA.values).toEqual(new Array(6).fill(20));
  });

  it('differentiates size-1 unstack and bandPart', async () => {
    await initBackend('cpu');
    const x = tf.tensor2d([[1, 2, 3]]);
    const gradient = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.unstack(a)[0], tf.tensor1d([2, 3, 4]))))(x);
    expect(Array.from(gradient.dataSync())).toEqual([2, 3, 4]);

    const square = tf.ones([3, 3]);
    const bandGradient = tf.grad((a: tf.Tensor) => tf.sum(tf.linalg.bandPart(a, -1, 0)))(square);
    expect(Array.from(bandGradient.dataSync())).toEqual([1, 0, 0, 1, 1, 0, 1, 1, 1]);
    tf.dispose([x, gradient, square, bandGradient]);
  });
});

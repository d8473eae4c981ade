import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, releaseAbandonedTape, tf } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('releaseAbandonedTape', () => {
  it('frees the tensors a thrown gradient computation saved, and only those', () => {
    const x = tf.variable(tf.tensor1d([1, 2, 3]), true, 'tape-test/x');
    const before = tf.memory().numTensors;
    expect(() =>
      tf.variableGrads(() => {
        const y = tf.sum(tf.mul(tf.exp(x), x));
        throw new Error(`failed after computing ${y.shape.length}`);
      }, [x]),
    ).toThrow('failed after computing 0');
    // exp saves its output, mul both inputs: the clones outlive the thrown tidy scope.
    const leaked = tf.memory().numTensors - before;
    expect(leaked).toBeGreaterThan(0);
    expect(releaseAbandonedTape()).toBe(leaked);
    expect(tf.memory().numTensors).toBe(before);

    // A later gradient computation still works and leaves nothing behind.
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(x)), [x]);
    expect(Array.from(grads['tape-test/x']!.dataSync())).toEqual([2, 4, 6]);
    tf.dispose([value, grads['tape-test/x']!]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('does nothing when no tape is left or inside a gradient computation', () => {
    expect(releaseAbandonedTape()).toBe(0);
    const x = tf.variable(tf.scalar(2), true, 'tape-test/inside');
    let inside = -1;
    const { value, grads } = tf.variableGrads(() => {
      const y = tf.mul(x, x) as tf.Scalar;
      inside = releaseAbandonedTape();
      return y;
    }, [x]);
    expect(inside).toBe(0);
    expect(grads['tape-test/inside']!.dataSync()[0]).toBe(4);
    tf.dispose([value, grads['tape-test/inside']!, x]);
  });
});

import { describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '../src/index.js';

describe('initBackend', () => {
  it('rejects an unknown name and lists the valid ones', async () => {
    await expect(initBackend('webgpu')).rejects.toThrow('Unknown backend "webgpu". Valid backends: auto, wasm, cpu, tensorflow.');
  });

  it('names the package to install when tensorflow cannot load', async () => {
    await expect(initBackend('tensorflow')).rejects.toThrow(/install @tensorflow\/tfjs-node .*Load errors: @tensorflow\/tfjs-node-gpu/);
  });

  it('falls back from auto to wasm and says why', async () => {
    const info = await initBackend('auto');
    expect(info.name).toBe('wasm');
    expect(info.autoFallbackReason).toMatch(/@tensorflow\/tfjs-node/);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('registers gradients so tf.grad works on cpu', async () => {
    await initBackend('cpu');
    const x = tf.tensor1d([1, 2, 3]);
    const gradient = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, a)))(x);
    expect(Array.from(await gradient.data())).toEqual([2, 4, 6]);
    tf.dispose([x, gradient]);
  });
});

describe('Rng', () => {
  it('repeats the same draws for the same seed', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const drawsA = Array.from({ length: 5 }, () => a.nextUint32());
    const drawsB = Array.from({ length: 5 }, () => b.nextUint32());
    expect(drawsA).toEqual(drawsB);
    expect(new Rng(8).nextUint32()).not.toBe(drawsA[0]);
  });

  it('gives independent streams per fork label', () => {
    const root = new Rng('run');
    expect(root.fork('a').next()).toBe(new Rng('run').fork('a').next());
    expect(root.fork('a').next()).not.toBe(root.fork('b').next());
  });

  it('draws uniforms in range with the right mean', () => {
    const values = new Rng(1).uniformArray(20_000, -1, 3);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...values)).toBeLessThan(3);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeCloseTo(1, 1);
  });

  it('draws normals with unit variance', () => {
    const values = new Rng(2).normalArray(20_000);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(variance).toBeCloseTo(1, 1);
  });

  it('makes orthogonal matrices', async () => {
    await initBackend('cpu');
    for (const [rows, cols] of [[4, 6], [6, 4]]) {
      const m = new Rng(3).orthogonal(rows, cols, 0.1);
      const gram = rows <= cols ? tf.matMul(m, m, false, true) : tf.matMul(m, m, true, false);
      const n = Math.min(rows, cols);
      const expected = tf.mul(tf.eye(n), 0.01);
      expect(tf.max(tf.abs(tf.sub(gram, expected))).dataSync()[0]).toBeLessThan(1e-6);
      tf.dispose([m, gram, expected]);
    }
  });
});

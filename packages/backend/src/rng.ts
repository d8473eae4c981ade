import { tf } from './tf.js';

/**
 * A seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) that draws in
 * JavaScript, so the same seed gives the same numbers on every backend. Use `fork(label)` to get an
 * independent stream per consumer, so adding a draw in one place does not shift the draws elsewhere.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  /** Creates a generator; `seed` may be any integer or string. */
  constructor(readonly seed: number | string) {
    let state = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    const next = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Returns an independent generator derived from this one's seed and `label`. */
  fork(label: string): Rng {
    return new Rng(`${this.seed}/${label}`);
  }

  /** Returns a uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Returns a uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Returns a uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) {
      throw new RangeError(`Rng.int: n must be a positive integer, received ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  /** Returns a standard normal draw (Box-Muller). */
  normal(): number {
    if (this.spareNormal !== null) {
      const value = this.spareNormal;
      this.spareNormal = null;
      return value;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** Fills a new Float32Array of `size` uniform draws in [low, high). */
  uniformArray(size: number, low = 0, high = 1): Float32Array {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = low + (high - low) * this.next();
    return out;
  }

  /** Fills a new Float32Array of `size` normal draws with the given mean and standard deviation. */
  normalArray(size: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Draws a float32 tensor of uniforms in [low, high). */
  uniform(shape: number[], low = 0, high = 1): tf.Tensor {
    return tf.tensor(this.uniformArray(sizeOf(shape), low, high), shape, 'float32');
  }

  /** Draws a float32 tensor of normals with the given mean and standard deviation. */
  normalTensor(shape: number[], mean = 0, std = 1): tf.Tensor {
    return tf.tensor(this.normalArray(sizeOf(shape), mean, std), shape, 'float32');
  }

  /**
   * Draws a float32 tensor of normals truncated to two standard deviations (values beyond them
   * are redrawn), as GPT-2-style initialisers use.
   */
  truncatedNormal(shape: number[], std = 1): tf.Tensor {
    const size = sizeOf(shape);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      let value = this.normal();
      while (Math.abs(value) > 2) value = this.normal();
      out[i] = std * value;
    }
    return tf.tensor(out, shape, 'float32');
  }

  /**
   * Draws a float32 [rows, cols] matrix with orthonormal rows (rows <= cols) or columns (rows > cols),
   * from Gram-Schmidt on normal draws, multiplied by `gain`. It exists because tfjs's orthogonal
   * initializer takes no seed.
   */
  orthogonal(rows: number, cols: number, gain = 1): tf.Tensor2D {
    const transpose = rows > cols;
    const n = transpose ? cols : rows;
    const m = transpose ? rows : cols;
    const basis: Float64Array[] = [];
    for (let i = 0; i < n; i++) {
      let vector: Float64Array;
      let norm = 0;
      do {
        vector = Float64Array.from({ length: m }, () => this.normal());
        for (const previous of basis) {
          let dot = 0;
          for (let k = 0; k < m; k++) dot += vector[k] * previous[k];
          for (let k = 0; k < m; k++) vector[k] -= dot * previous[k];
        }
        norm = Math.sqrt(vector.reduce((acc, value) => acc + value * value, 0));
      } while (norm < 1e-6);
      for (let k = 0; k < m; k++) vector[k] /= norm;
      basis.push(vector);
    }
    const out = new Float32Array(rows * cols);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < m; k++) {
        const index = transpose ? k * cols + i : i * cols + k;
        out[index] = gain * basis[i][k];
      }
    }
    return tf.tensor2d(out, [rows, cols], 'float32');
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((acc, dim) => acc * dim, 1);
}

function hashString(text: string): number {
  // FNV-1a, 32 bits.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

import { tf } from '@moebench/backend';

/** Activations an expert can use. */
export const ACTIVATIONS = ['gelu', 'relu'] as const;

/** An activation name: `gelu` (exact, erf form) or `relu`. */
export type Activation = (typeof ACTIVATIONS)[number];

/**
 * GELU in its exact form, x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))). tfjs-core 4.22 has no GELU
 * op, and its erf (a polynomial approximation with error below 1.5e-7) has a gradient and a kernel on
 * cpu and wasm.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
    return tf.mul(x, cdf);
  });
}

/** Applies the named activation. */
export function applyActivation(x: tf.Tensor, activation: Activation): tf.Tensor {
  return activation === 'gelu' ? gelu(x) : tf.relu(x);
}

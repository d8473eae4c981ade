import { tf } from '@moebench/backend';
import { gelu } from './ops.js';

/** Activations an expert can use. */
export const ACTIVATIONS = ['gelu', 'relu'] as const;

/** An activation name: `gelu` (the tanh approximation, see `gelu`) or `relu`. */
export type Activation = (typeof ACTIVATIONS)[number];

/** Applies the named activation. */
export function applyActivation(x: tf.Tensor, activation: Activation): tf.Tensor {
  return activation === 'gelu' ? gelu(x) : tf.relu(x);
}

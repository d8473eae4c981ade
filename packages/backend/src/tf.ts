/**
 * The single place that loads TensorFlow.js for moebench.
 *
 * `@tensorflow/tfjs-core` alone registers no gradients, and its ESM build cannot be deep-imported
 * under Node (its `dist/*.js` files import each other without `.js` extensions, so
 * `@tensorflow/tfjs-core/dist/register_all_gradients` fails to resolve). The CommonJS build of the
 * `@tensorflow/tfjs` union package registers every gradient into tfjs-core's global registry when it
 * loads, and it loads the same way under plain Node and under vitest. Every other module imports
 * tfjs from here, never from `@tensorflow/tfjs` directly. ./gradients.ts then replaces two stock
 * gradients that fail on every backend (broadcast BatchMatMul, Unpack along a size-1 axis).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
// After the line above, so these fixes replace the stock gradients rather than being replaced.
import './gradients.js';

export { tf };

import { tf } from '@moebench/backend';
import type { RoutingPlan } from './types.js';

/**
 * Dispatch and combine by gather. The index tensors are computed in JavaScript from the plan's
 * experts and slots. Every position that receives nothing (an unused slot, a dropped choice) points
 * at a zero row appended to the source, so no dense one-hot [S, E, C] tensor is built. The
 * backward pass of both functions is gather's gradient (UnsortedSegmentSum) plus the slice that
 * undoes the padding. The zero row is appended with tf.pad rather than tf.concat, because the
 * gradient of pad is one Slice while that of concat is a SplitV, which measured slower on wasm.
 */

function checkPlan(plan: RoutingPlan, tokens: number, caller: string): void {
  const { numExperts, k, capacity, experts, slots } = plan;
  if (experts.length !== tokens * k || slots.length !== tokens * k) {
    throw new RangeError(
      `${caller}: plan.experts and plan.slots must have tokens x k = ${tokens} x ${k} = ${tokens * k} entries, ` +
        `received ${experts.length} and ${slots.length}`,
    );
  }
  const gateShape = plan.gates.shape;
  if (gateShape.length !== 2 || gateShape[0] !== tokens || gateShape[1] !== k) {
    throw new RangeError(`${caller}: plan.gates must have shape [${tokens}, ${k}], received [${gateShape.join(', ')}]`);
  }
  if (!Number.isInteger(numExperts) || numExperts < 1 || !Number.isInteger(capacity) || capacity < 0) {
    throw new RangeError(`${caller}: plan.numExperts must be >= 1 and plan.capacity >= 0, received ${numExperts} and ${capacity}`);
  }
}

/**
 * Returns, for each slot of the [E, C] buffer in row-major order, the token that occupies it, or
 * `tokens` (the appended zero row) when the slot is unused. [E * C] int32.
 *
 * @throws RangeError when two choices claim the same slot or a slot is out of range.
 */
export function dispatchIndices(plan: RoutingPlan, tokens: number): Int32Array {
  const { numExperts, k, capacity, experts, slots } = plan;
  const indices = new Int32Array(numExperts * capacity).fill(tokens);
  for (let index = 0; index < experts.length; index++) {
    const slot = slots[index];
    if (slot < 0) continue;
    const expert = experts[index];
    if (expert < 0 || expert >= numExperts || slot >= capacity) {
      throw new RangeError(
        `dispatch: choice ${index} has expert ${expert} and slot ${slot}, outside [0, ${numExperts}) x [0, ${capacity})`,
      );
    }
    const position = expert * capacity + slot;
    if (indices[position] !== tokens) {
      throw new RangeError(`dispatch: expert ${expert} slot ${slot} is claimed by two choices`);
    }
    indices[position] = Math.floor(index / k);
  }
  return indices;
}

/**
 * Returns, for each choice, its row in the flattened [E * C, d] expert output, or E * C (the
 * appended zero row) when the choice was dropped. [S * k] int32.
 */
export function combineIndices(plan: RoutingPlan): Int32Array {
  const { numExperts, capacity, experts, slots } = plan;
  const zeroRow = numExperts * capacity;
  const indices = new Int32Array(experts.length);
  for (let index = 0; index < experts.length; index++) {
    const slot = slots[index];
    indices[index] = slot < 0 ? zeroRow : experts[index] * capacity + slot;
  }
  return indices;
}

/**
 * Gathers the tokens of each expert into a buffer: features [S, d] -> [E, C, d], where slot c of
 * expert e contains the token whose kept choice has that expert and slot, and unused slots contain zeros.
 * Differentiable with respect to `features`.
 */
export function dispatch(features: tf.Tensor2D, plan: RoutingPlan): tf.Tensor3D {
  const [tokens, dModel] = features.shape;
  checkPlan(plan, tokens, 'dispatch');
  const indices = dispatchIndices(plan, tokens);

  return tf.tidy(() => {
    const padded = tf.pad(features, [[0, 1], [0, 0]]); // [S + 1, d], last row zero
    const rows = tf.gather(padded, tf.tensor1d(indices, 'int32')); // [E * C, d]
    return tf.reshape(rows, [plan.numExperts, plan.capacity, dModel]) as tf.Tensor3D;
  });
}

/**
 * Combines expert outputs [E, C, d] back into token order [S, d]: each token's output is the sum over
 * its kept choices of gate x expert output at the choice's slot. A dropped choice contributes exactly
 * zero, whatever its gate holds, and passes no gradient to its gate. Differentiable with respect to
 * `expertOutputs` and `plan.gates`.
 */
export function combine(expertOutputs: tf.Tensor3D, plan: RoutingPlan): tf.Tensor2D {
  const [numExperts, capacity, dModel] = expertOutputs.shape;
  if (numExperts !== plan.numExperts || capacity !== plan.capacity) {
    throw new RangeError(
      `combine: expertOutputs must have shape [${plan.numExperts}, ${plan.capacity}, d], ` +
        `received [${expertOutputs.shape.join(', ')}]`,
    );
  }
  const { k } = plan;
  const tokens = plan.experts.length / k;
  checkPlan(plan, tokens, 'combine');
  const indices = combineIndices(plan);
  const kept = new Uint8Array(plan.slots.length);
  for (let index = 0; index < kept.length; index++) kept[index] = plan.slots[index] >= 0 ? 1 : 0;

  return tf.tidy(() => {
    const flat = tf.reshape(expertOutputs, [numExperts * capacity, dModel]);
    const padded = tf.pad(flat, [[0, 1], [0, 0]]); // [E * C + 1, d], last row zero
    const rows = tf.gather(padded, tf.tensor1d(indices, 'int32')); // [S * k, d]

    // `where` rather than a multiply by the mask, so a NaN or infinite gate on a dropped choice cannot leak.
    const keptMask = tf.tensor2d(kept, [tokens, k], 'bool');
    const gates = tf.where(keptMask, plan.gates, tf.zerosLike(plan.gates)); // [S, k]
    const weighted = tf.mul(rows, tf.reshape(gates, [tokens * k, 1])); // [S * k, d]
    if (k === 1) return weighted as tf.Tensor2D;
    return tf.sum(tf.reshape(weighted, [tokens, k, dModel]), 1) as tf.Tensor2D;
  });
}

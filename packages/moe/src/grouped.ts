import { tf } from '@moebench/backend';
import { applyActivation } from './activation.js';
import type { ExpertBank } from './expert-bank.js';
import { dense } from './ops.js';
import type { RoutingPlan } from './types.js';

/**
 * Kept choices of a plan grouped by expert: the token and the choice index of each, expert by
 * expert, in slot order inside an expert.
 */
export interface ExpertGroups {
  /** Token of each kept choice, expert 0's first, [kept] int32. */
  tokens: Int32Array;
  /** Index s * k + j of each kept choice into `plan.experts` and the flattened gates, [kept] int32. */
  choices: Int32Array;
  /** Kept choices of each expert, [E]; expert e's rows start at the sum of the counts before it. */
  counts: Int32Array;
}

/**
 * Returns whether the layer should run `plan` without the [E, C, d] buffer: when the router marked it
 * `dropless`, or when its capacity is at least the token count S. A token's k choices go to distinct
 * experts, so C >= S can drop nothing, and the buffer would compute E x S rows for S x k choices.
 */
export function isDroplessPlan(plan: RoutingPlan, tokens: number): boolean {
  return plan.dropless === true || plan.capacity >= tokens;
}

/**
 * Groups the kept choices of `plan` by expert, in slot order inside each expert (a counting sort on
 * expert, then on slot). Choices with expert -1 (no choice) or slot -1 (dropped) are left out.
 *
 * @throws RangeError when an expert index is outside [-1, E), or the plan is marked `dropless` and
 *   a choice was dropped.
 */
export function groupByExpert(plan: RoutingPlan): ExpertGroups {
  const { numExperts, k, experts, slots } = plan;
  const counts = new Int32Array(numExperts);
  for (let index = 0; index < experts.length; index++) {
    const expert = experts[index];
    if (expert === -1) continue;
    if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
      throw new RangeError(`groupByExpert: choice ${index} has expert ${expert}, outside [-1, ${numExperts})`);
    }
    if (slots[index] < 0) {
      if (plan.dropless === true) {
        throw new RangeError(`groupByExpert: the plan is marked dropless, but choice ${index} (expert ${expert}) was dropped`);
      }
      continue;
    }
    counts[expert]++;
  }

  const starts = new Int32Array(numExperts);
  for (let expert = 1; expert < numExperts; expert++) starts[expert] = starts[expert - 1] + counts[expert - 1];
  const kept = numExperts === 0 ? 0 : starts[numExperts - 1] + counts[numExperts - 1];

  // Slots are the running count per expert, so placing each choice by its slot keeps slot order.
  // A slot at or past the expert's count would mean two choices claim one row.
  const choices = new Int32Array(kept).fill(-1);
  for (let index = 0; index < experts.length; index++) {
    const expert = experts[index];
    const slot = slots[index];
    if (expert < 0 || slot < 0) continue;
    if (slot >= counts[expert] || choices[starts[expert] + slot] !== -1) {
      throw new RangeError(
        `groupByExpert: choice ${index} has slot ${slot} of expert ${expert}, which keeps ${counts[expert]} choices; ` +
          'slots must number each expert\'s kept choices 0, 1, 2, ... without repeats',
      );
    }
    choices[starts[expert] + slot] = index;
  }
  const tokens = new Int32Array(kept);
  for (let row = 0; row < kept; row++) tokens[row] = Math.floor(choices[row] / k);
  return { tokens, choices, counts };
}

/**
 * Adds row i of `rows` [n, d] into row indices[i] of an [S, d] output of zeros (tf.unsortedSegmentSum).
 * Its gradient is a plain gather of the upstream gradient: every index is in [0, S), so the stock
 * gradient's masking of negative ids, an element-wise LogicalAnd that measured 3.5 ms of a 7.5 ms
 * HASH layer step on wasm (S = 1024, d = 64), is not needed.
 */
function scatterAddRows(rows: tf.Tensor2D, indices: tf.Tensor1D, tokens: number): tf.Tensor2D {
  const scatter = tf.customGrad(((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, ids, save] = inputs as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: tf.unsortedSegmentSum(x, ids, tokens),
      // The ids are integers and get a zero gradient.
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.gather(dy as tf.Tensor2D, saved[0]), tf.zerosLike(saved[0])],
    };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, ids: tf.Tensor1D) => tf.Tensor2D;
  return scatter(rows, indices);
}

/**
 * Runs each expert of `bank` on exactly the tokens `plan` kept for it, and combines the outputs with
 * the gates: features [S, d] -> [S, d]. One gather takes the N kept choices' token rows sorted by
 * expert, and a split cuts them into the experts' blocks. Expert e computes
 * act(x W1[e] + b1[e]) W2[e] + b2[e] on its n_e rows as two products, [n_e, d] x [d, f] and
 * [n_e, f] x [f, d]. The outputs are concatenated, scaled by their choices' gates, and added into the
 * output at their tokens. The values equal those of dispatch, `bank.apply` and combine, but the
 * products have N rows instead of E x C, so no padding row is computed. Dropped choices contribute
 * zero and pass no gradient to their gates. Differentiable with respect to `features`, the gates and
 * the bank's variables.
 *
 * The weights are split per expert with tf.unstack, whose gradient is one stack of the E pieces.
 * On wasm, moebench's Slice, SplitV and Unpack kernels copy only the pieces they return, so the
 * splits copy each weight tensor and the [N, d] rows once.
 */
export function applyExpertsPerGroup(features: tf.Tensor2D, plan: RoutingPlan, bank: ExpertBank): tf.Tensor2D {
  const [tokens, dModel] = features.shape;
  if (dModel !== bank.dModel || plan.numExperts !== bank.numExperts) {
    throw new RangeError(
      `applyExpertsPerGroup: features [S, ${bank.dModel}] and a plan over ${bank.numExperts} experts are needed, ` +
        `received features [${features.shape.join(', ')}] and ${plan.numExperts} experts`,
    );
  }
  const { k } = plan;
  if (plan.experts.length !== tokens * k || plan.slots.length !== tokens * k) {
    throw new RangeError(
      `applyExpertsPerGroup: plan.experts and plan.slots must have tokens x k = ${tokens} x ${k} = ${tokens * k} entries, ` +
        `received ${plan.experts.length} and ${plan.slots.length}`,
    );
  }
  const groups = groupByExpert(plan);

  const rowCount = groups.tokens.length;
  if (rowCount === 0) return tf.zeros([tokens, dModel]) as tf.Tensor2D;
  const active: number[] = [];
  for (let expert = 0; expert < bank.numExperts; expert++) if (groups.counts[expert] > 0) active.push(expert);

  return tf.tidy(() => {
    const w1 = tf.unstack(bank.w1) as tf.Tensor2D[]; // E x [d, f]
    const b1 = tf.unstack(bank.b1) as tf.Tensor1D[]; // E x [f]
    const w2 = tf.unstack(bank.w2) as tf.Tensor2D[]; // E x [f, d]
    const b2 = tf.unstack(bank.b2) as tf.Tensor1D[]; // E x [d]

    // One gather of every kept choice's token, sorted by expert, split into the experts' row blocks.
    const rowTokens = tf.tensor1d(groups.tokens, 'int32');
    const rows = tf.gather(features, rowTokens); // [N, d]
    const blocks = active.length === 1 ? [rows] : tf.split(rows, active.map((expert) => groups.counts[expert]), 0);
    const outputs = active.map((expert, index) => {
      const hidden = applyActivation(dense(blocks[index], w1[expert], b1[expert]), bank.activation); // [n_e, f]
      return dense(hidden, w2[expert], b2[expert]) as tf.Tensor2D; // [n_e, d]
    });
    const expertRows = outputs.length === 1 ? outputs[0] : (tf.concat(outputs, 0) as tf.Tensor2D); // [N, d]

    const gates = tf.gather(tf.reshape(plan.gates, [tokens * k, 1]), tf.tensor1d(groups.choices, 'int32')); // [N, 1]
    return scatterAddRows(tf.mul(expertRows, gates) as tf.Tensor2D, rowTokens, tokens);
  });
}

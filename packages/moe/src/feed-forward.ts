import { tf } from '@moebench/backend';
import { combine, dispatch } from './dispatch.js';
import type { ExpertBank } from './expert-bank.js';
import { applyExpertsPerGroup, isDroplessPlan } from './grouped.js';
import { computeRoutingStats } from './stats.js';
import { requireLayerInput } from './validate.js';
import type { MoeLayer, MoeOutput, Router, RouterContext, RoutingStats } from './types.js';

/** Parts of a `MoeFeedForward`. */
export interface MoeFeedForwardOptions {
  /** The router; the layer owns it from now on (its variables are the layer's). Required. */
  router: Router;
  /** The experts; the layer owns them. Required, with `bank.dModel` equal to the input width. */
  bank: ExpertBank;
}

/**
 * A mixture-of-experts feed-forward layer: router + expert bank. `apply` flattens the input to
 * tokens [S, d] and routes them. For a plan with a capacity limit it gathers each expert's tokens
 * into an [E, C, d] buffer, runs all experts as one batched matmul over every slot, used or not, and
 * combines the outputs back with the gates. For a dropless plan (see `isDroplessPlan`) it runs each
 * expert on exactly its tokens instead (`applyExpertsPerGroup`), so no padding row is computed.
 * Dropped tokens get exactly zero, so the residual connection around the layer carries them.
 */
export class MoeFeedForward implements MoeLayer {
  /** The router. */
  readonly router: Router;
  /** The experts. */
  readonly bank: ExpertBank;

  /** Builds the layer from a router and a bank. */
  constructor(options: MoeFeedForwardOptions) {
    this.router = options.router;
    this.bank = options.bank;
  }

  /** Router and expert variables. */
  get trainableVariables(): tf.Variable[] {
    return [...this.router.trainableVariables, ...this.bank.trainableVariables];
  }

  /**
   * Runs the layer on `input` [..., d] (token order is the flattened leading dimensions). Call inside
   * the caller's tidy or gradient scope; the intermediate tensors are released here.
   */
  apply(input: tf.Tensor, context: RouterContext): MoeOutput {
    const dModel = this.bank.dModel;
    requireLayerInput('MoeFeedForward.apply', input, dModel, context);

    let stats: RoutingStats | undefined;
    const result = tf.tidy(() => {
      const tokens = tf.reshape(input, [-1, dModel]) as tf.Tensor2D; // [S, d]
      const plan = this.router.route(tokens, context);
      stats = computeRoutingStats(plan);

      let combined: tf.Tensor2D; // [S, d]
      if (isDroplessPlan(plan, tokens.shape[0])) {
        combined = applyExpertsPerGroup(tokens, plan, this.bank);
      } else {
        const buffer = dispatch(tokens, plan); // [E, C, d]
        const expertOutputs = this.bank.apply(buffer); // [E, C, d]
        combined = combine(expertOutputs, plan);
      }
      const output = tf.reshape(combined, input.shape);

      const lossValues = Object.values(plan.losses);
      const auxLoss = (lossValues.length > 0 ? tf.addN(lossValues) : tf.scalar(0)) as tf.Scalar;
      return { output, auxLoss, losses: { ...plan.losses } };
    });
    return { ...result, stats: stats as RoutingStats };
  }

  /** Choices per token k of the router (1 when the router leaves `k` unset). */
  get k(): number {
    return this.router.k ?? 1;
  }

  /** Parameters in total, and those one token uses: the router plus k experts. */
  parameterCount(): { total: number; activePerToken: number } {
    const routerParameters = this.router.trainableVariables.reduce((sum, variable) => sum + variable.size, 0);
    const perExpert = this.bank.parametersPerExpert();
    return {
      total: routerParameters + this.bank.numExperts * perExpert,
      activePerToken: routerParameters + this.k * perExpert,
    };
  }

  /**
   * Forward FLOPs per token in training: the router plus the two projections of every expert row the
   * layer computes per token (`Router.expertRowsPerToken`, k when the router leaves it unset). For a
   * capacity router that is capacity factor x k rows, the padding slots of the buffer included.
   */
  flopsPerToken(): number {
    const routerParameters = this.router.trainableVariables.reduce((sum, variable) => sum + variable.size, 0);
    const routerFlops = this.router.flopsPerToken ? this.router.flopsPerToken() : 2 * routerParameters;
    const rows = this.router.expertRowsPerToken ? this.router.expertRowsPerToken() : this.k;
    return routerFlops + rows * this.bank.flopsPerTokenPerExpert();
  }

  /** Releases the router's and the experts' variables. */
  dispose(): void {
    if (this.router.dispose) this.router.dispose();
    else tf.dispose(this.router.trainableVariables);
    this.bank.dispose();
  }
}

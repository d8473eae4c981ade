import { Rng, tf } from '@moebench/backend';
import {
  createLayerExpertBank,
  expertRowsPerToken,
  LinearRouter,
  MoeFeedForward,
  type RouterContext,
  type RoutingPlan,
} from '@moebench/moe';
import { resolveGShardOptions, type ResolvedGShardOptions, type GShardOptions } from './options.js';
import { gshardRoute } from './route.js';

/** The GShard top-2 router: owns Wr [d, E] and routes with its options. */
export class GShardRouter extends LinearRouter {
  /** Router name. */
  readonly name = 'gshard';
  /** Choices per token. */
  readonly k = 2;

  /** Creates the router weights from the resolved options and `rng`. */
  constructor(
    readonly options: ResolvedGShardOptions,
    rng: Rng,
  ) {
    super(options, rng);
  }

  /** Expert rows per token in training, from the training capacity factor (see `expertRowsPerToken`). */
  expertRowsPerToken(): number {
    return expertRowsPerToken(2, this.options.numExperts, this.options.capacityFactor);
  }

  /** Routes `features` [S, d]; see `gshardRoute`. */
  route(features: tf.Tensor2D, context: RouterContext): RoutingPlan {
    return gshardRoute(features, this.weights as tf.Tensor2D, this.options, context);
  }
}

/** A GShard top-2 MoE feed-forward layer: `GShardRouter` + `ExpertBank`. */
export class GShardLayer extends MoeFeedForward {
  /** The resolved options, every default filled in. */
  readonly options: ResolvedGShardOptions;

  /** Validates `options` and creates the router and experts. */
  constructor(options: GShardOptions) {
    const resolved = resolveGShardOptions(options);
    const rng = new Rng(resolved.seed);
    const router = new GShardRouter(resolved, rng.fork('router'));
    const bank = createLayerExpertBank(resolved, rng.fork('experts'));
    super({ router, bank });
    this.options = resolved;
  }

  /** The GShard router. */
  get gshardRouter(): GShardRouter {
    return this.router as GShardRouter;
  }
}

/** Creates a GShard layer; see `GShardOptions` for the defaults. */
export function createGShardLayer(options: GShardOptions): GShardLayer {
  return new GShardLayer(options);
}

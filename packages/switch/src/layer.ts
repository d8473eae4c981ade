import { Rng, tf } from '@moebench/backend';
import {
  createLayerExpertBank,
  expertRowsPerToken,
  LinearRouter,
  MoeFeedForward,
  type RouterContext,
  type RoutingPlan,
} from '@moebench/moe';
import { resolveSwitchOptions, type ResolvedSwitchOptions, type SwitchOptions } from './options.js';
import { switchRoute } from './route.js';

/** The Switch router: owns Wr [d, E] and routes with the training or evaluation capacity factor. */
export class SwitchRouter extends LinearRouter {
  /** Router name. */
  readonly name = 'switch';
  /** Choices per token. */
  readonly k = 1;

  /** Creates the router weights from the resolved options and `rng`. */
  constructor(
    readonly options: ResolvedSwitchOptions,
    rng: Rng,
  ) {
    super(options, rng);
  }

  /** Expert rows per token in training, from the training capacity factor (see `expertRowsPerToken`). */
  expertRowsPerToken(): number {
    return expertRowsPerToken(1, this.options.numExperts, this.options.capacityFactor);
  }

  /** Routes `features` [S, d]; see `switchRoute`. */
  route(features: tf.Tensor2D, context: RouterContext): RoutingPlan {
    const { capacityFactor, evalCapacityFactor, jitterEps, balanceLossWeight, zLossWeight } = this.options;
    return switchRoute(
      features,
      this.weights as tf.Tensor2D,
      { capacityFactor: context.training ? capacityFactor : evalCapacityFactor, jitterEps, balanceLossWeight, zLossWeight },
      context,
    );
  }
}

/** A Switch Transformer MoE feed-forward layer: `SwitchRouter` + `ExpertBank`. */
export class SwitchLayer extends MoeFeedForward {
  /** The resolved options, every default filled in. */
  readonly options: ResolvedSwitchOptions;

  /** Validates `options` and creates the router and experts. */
  constructor(options: SwitchOptions) {
    const resolved = resolveSwitchOptions(options);
    const rng = new Rng(resolved.seed);
    const router = new SwitchRouter(resolved, rng.fork('router'));
    const bank = createLayerExpertBank(resolved, rng.fork('experts'));
    super({ router, bank });
    this.options = resolved;
  }

  /** The Switch router. */
  get switchRouter(): SwitchRouter {
    return this.router as SwitchRouter;
  }
}

/** Creates a Switch layer; see `SwitchOptions` for the defaults. */
export function createSwitchLayer(options: SwitchOptions): SwitchLayer {
  return new SwitchLayer(options);
}

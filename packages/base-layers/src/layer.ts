import { Rng, tf } from '@moebench/backend';
import {
  combine,
  computeRoutingStats,
  dispatch,
  ExpertBank,
  groupedLayerNorm,
  requireLayerInput,
  type MoeLayer,
  type MoeOutput,
  type Router,
  type RouterContext,
  type RoutingPlan,
  type RoutingStats,
} from '@moebench/moe';
import { resolveBaseLayerOptions, type BaseLayerOptions, type ResolvedBaseLayerOptions } from './options.js';
import { baseRoute } from './route.js';

/** The BASE router: owns the expert centroids [E, d] and routes with `baseRoute`. */
export class BaseRouter implements Router {
  /** Router name. */
  readonly name = 'base';
  /** Choices per token. */
  readonly k = 1;
  /** Expert centroids w_e, [E, d]; row e is expert e's centroid. */
  readonly centroids: tf.Variable;

  /** Creates the centroids as a seeded orthogonal matrix scaled by `options.centroidGain`. */
  constructor(
    readonly options: ResolvedBaseLayerOptions,
    rng: Rng,
  ) {
    const { numExperts, dModel, centroidGain } = options;
    const initial = rng.orthogonal(numExperts, dModel, centroidGain);
    this.centroids = tf.variable(initial, true, options.name === undefined ? undefined : `${options.name}/centroids`);
    initial.dispose();
  }

  /** The centroids. */
  get trainableVariables(): tf.Variable[] {
    return [this.centroids];
  }

  /** Routes `features` [S, d]: balanced in training, greedy in evaluation; see `baseRoute`. */
  route(features: tf.Tensor2D, context: RouterContext): RoutingPlan {
    const { auctionEpsilon, auctionEpsilonScaling } = this.options;
    return baseRoute(features, this.centroids as tf.Tensor2D, context, {
      relativeEpsilon: auctionEpsilon,
      epsilonScaling: auctionEpsilonScaling,
    });
  }

  /** Affinities x W^T: 2 E d FLOPs per token. */
  flopsPerToken(): number {
    return 2 * this.options.numExperts * this.options.dModel;
  }

  /** Releases the centroids. */
  dispose(): void {
    this.centroids.dispose();
  }
}

/**
 * One residual sublayer of every expert, stacked over experts: a layer norm per expert (scale and
 * bias [E, d]) and an `ExpertBank` whose output projection starts at zero.
 */
interface ExpertSublayer {
  normScale: tf.Variable;
  normBias: tf.Variable;
  bank: ExpertBank;
}

/**
 * The BASE layer as fairseq computes it (`fairseq/modules/base_layer.py`, BaseLayer and BaseSublayer). Routing reads the residual stream x itself; token s goes to
 * expert e (balanced assignment in training, its best expert in evaluation), and
 *
 *   y = x + alpha * FFN_e(LN_e(x)),   alpha = sigmoid(x . w_e),
 *
 * which equals alpha * (x + FFN_e(LN_e(x))) + (1 - alpha) * x. The layer carries its own residual, so
 * a model uses its output as the new residual stream. Each expert's output projection starts at zero,
 * so the layer starts as the identity. There is no auxiliary loss (`auxLoss` is 0).
 */
export class BaseLayer implements MoeLayer {
  /** The resolved options, every default filled in. */
  readonly options: ResolvedBaseLayerOptions;
  /** The router that owns the centroids. */
  readonly router: BaseRouter;
  private readonly sublayers: ExpertSublayer[];

  /** Validates `options` and creates the centroids and experts. */
  constructor(options: BaseLayerOptions) {
    const resolved = resolveBaseLayerOptions(options);
    this.options = resolved;
    const { numExperts, dModel, hiddenSize, name } = resolved;
    const rng = new Rng(resolved.seed);
    this.router = new BaseRouter(resolved, rng.fork('centroids'));

    this.sublayers = [];
    for (let index = 0; index < resolved.sublayers; index++) {
      const prefix = name === undefined ? undefined : `${name}/experts/${index}`;
      const bank = new ExpertBank({
        numExperts,
        dModel,
        hiddenSize,
        activation: resolved.activation,
        initScale: resolved.expertInitScale,
        rng: rng.fork(`experts/${index}`),
        name: prefix,
      });
      // The output projection starts at zero: the expert adds nothing until it has trained.
      tf.tidy(() => bank.w2.assign(tf.zerosLike(bank.w2)));
      this.sublayers.push({
        normScale: ownVariable(tf.ones([numExperts, dModel]), prefix, 'norm_scale'),
        normBias: ownVariable(tf.zeros([numExperts, dModel]), prefix, 'norm_bias'),
        bank,
      });
    }
  }

  /** Expert banks, one per sublayer. */
  get banks(): ExpertBank[] {
    return this.sublayers.map((sublayer) => sublayer.bank);
  }

  /** Centroids, then per sublayer the layer-norm scale and bias and the bank's w1, b1, w2, b2. */
  get trainableVariables(): tf.Variable[] {
    return [
      ...this.router.trainableVariables,
      ...this.sublayers.flatMap(({ normScale, normBias, bank }) => [normScale, normBias, ...bank.trainableVariables]),
    ];
  }

  /**
   * Runs the layer on `input` [..., d] (token order is the flattened leading dimensions) and returns
   * the new residual stream, the same shape as `input`. Call inside the caller's tidy or gradient
   * scope; the intermediate tensors are released here.
   *
   * @throws RangeError for an input whose last dimension is not `dModel`, or in training for fewer
   *   tokens than experts.
   */
  apply(input: tf.Tensor, context: RouterContext): MoeOutput {
    const { dModel } = this.options;
    requireLayerInput('BaseLayer.apply', input, dModel, context);
    const tokens = input.size / dModel;
    if (context.training && tokens < this.options.numExperts) {
      throw new RangeError(
        `BaseLayer.apply: balanced assignment in training needs at least as many tokens as experts, ` +
          `received ${tokens} tokens for ${this.options.numExperts} experts`,
      );
    }

    let stats: RoutingStats | undefined;
    const output = tf.tidy(() => {
      const x = tf.reshape(input, [-1, dModel]) as tf.Tensor2D; // [S, d]
      const plan = this.router.route(x, context);
      stats = computeRoutingStats(plan);

      // hidden_{i+1} = hidden_i + FFN_i(LN_i(hidden_i)); `update` = hidden_n - x, the sum of the FFN outputs.
      let hidden = dispatch(x, plan); // [E, C, d]
      let update: tf.Tensor3D | undefined;
      for (const { normScale, normBias, bank } of this.sublayers) {
        const normalized = groupedLayerNorm(hidden, normScale as tf.Tensor2D, normBias as tf.Tensor2D, this.options.layerNormEpsilon);
        const feedForward = bank.apply(normalized); // [E, C, d]
        update = update === undefined ? feedForward : (tf.add(update, feedForward) as tf.Tensor3D);
        if (this.sublayers.length > 1) hidden = tf.add(hidden, feedForward) as tf.Tensor3D;
      }

      const gated = combine(update as tf.Tensor3D, plan); // [S, d], alpha * update per token
      return tf.reshape(tf.add(x, gated), input.shape);
    });
    return { output, auxLoss: tf.scalar(0), losses: {}, stats: stats as RoutingStats };
  }

  /**
   * Parameters in total, and those one token uses: all centroids (every token's affinities read them)
   * plus one expert's sublayers.
   */
  parameterCount(): { total: number; activePerToken: number } {
    const { numExperts, dModel } = this.options;
    const centroids = numExperts * dModel;
    const perExpert = this.sublayers.reduce((sum, { bank }) => sum + bank.parametersPerExpert() + 2 * dModel, 0);
    return { total: centroids + numExperts * perExpert, activePerToken: centroids + perExpert };
  }

  /** Forward FLOPs per token: the affinities plus one expert's projections in every sublayer. */
  flopsPerToken(): number {
    return this.router.flopsPerToken() + this.sublayers.reduce((sum, { bank }) => sum + bank.flopsPerTokenPerExpert(), 0);
  }

  /** Releases every variable of the layer. */
  dispose(): void {
    this.router.dispose();
    for (const { normScale, normBias, bank } of this.sublayers) {
      tf.dispose([normScale, normBias]);
      bank.dispose();
    }
  }
}

/** Makes a trainable variable from `initial` and releases `initial` (a variable keeps its own reference). */
function ownVariable(initial: tf.Tensor, prefix: string | undefined, field: string): tf.Variable {
  const variable = tf.variable(initial, true, prefix === undefined ? undefined : `${prefix}/${field}`);
  initial.dispose();
  return variable;
}

/** Creates a BASE layer; see `BaseLayerOptions` for the defaults. */
export function createBaseLayer(options: BaseLayerOptions): BaseLayer {
  return new BaseLayer(options);
}

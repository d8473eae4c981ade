import { Rng, type tf } from '@moebench/backend';
import { createLayerExpertBank, expertRowsPerToken, MoeFeedForward, type Router, type RouterContext, type RoutingPlan } from '@moebench/moe';
import { resolveHashOptions, type HashOptions, type ResolvedHashOptions } from './options.js';
import { hashRoute } from './route.js';
import { buildBalancedTable, buildBigramTable, buildRandomTable, type HashTable } from './table.js';

/** The HASH router: a fixed table from token ids to experts; no parameters. */
export class HashRouter implements Router {
  /** Router name. */
  readonly name = 'hash';
  /** Choices per token. */
  readonly k = 1;
  /** No trainable variables. */
  readonly trainableVariables: tf.Variable[] = [];

  /** Creates the router over `table`, with a capacity factor (<= 0 drops nothing). */
  constructor(
    readonly table: HashTable,
    readonly capacityFactor: number,
  ) {}

  /** Routes by `context.tokenIds` (and `context.previousTokenIds` for bigram tables); see `hashRoute`. */
  route(features: tf.Tensor2D, context: RouterContext): RoutingPlan {
    return hashRoute(features, this.table, this.capacityFactor, context);
  }

  /** Returns 0, because a table lookup costs no FLOPs. */
  flopsPerToken(): number {
    return 0;
  }

  /** Expert rows per token in training: 1 without a capacity factor, else the factor (see `expertRowsPerToken`). */
  expertRowsPerToken(): number {
    return expertRowsPerToken(1, this.table.numExperts, this.capacityFactor);
  }
}

/** Builds the table the options ask for. */
export function buildHashTable(options: ResolvedHashOptions): HashTable {
  if (options.table !== undefined) return options.table;
  if (options.kind === 'balanced') return buildBalancedTable(options.unigramCounts!, options.numExperts);
  if (options.kind === 'bigram') return buildBigramTable(options.vocabSize, options.numExperts, options.seed);
  return buildRandomTable(options.vocabSize, options.numExperts, options.seed);
}

/** A HASH Layers MoE feed-forward layer: `HashRouter` + `ExpertBank`. Needs token ids in the context. */
export class HashLayer extends MoeFeedForward {
  /** The resolved options, every default filled in. */
  readonly options: ResolvedHashOptions;

  /** Validates `options`, builds the table and creates the experts. */
  constructor(options: HashOptions) {
    const resolved = resolveHashOptions(options);
    const router = new HashRouter(buildHashTable(resolved), resolved.capacityFactor);
    const bank = createLayerExpertBank(resolved, new Rng(resolved.seed).fork('experts'));
    super({ router, bank });
    this.options = resolved;
  }

  /** The hash table, to be saved with `serializeHashTable`. */
  get table(): HashTable {
    return (this.router as HashRouter).table;
  }
}

/** Creates a HASH layer; see `HashOptions` for the defaults. */
export function createHashLayer(options: HashOptions): HashLayer {
  return new HashLayer(options);
}

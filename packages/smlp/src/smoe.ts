/**
 * sMoE, the sparse token-mixing module of sMLP: routing along the hidden dimension. The gated half
 * Z2 is cut into E chunks along its channels, and each chunk is mixed across the sequence by the
 * causal spatial matrix of the expert it is routed to.
 */
import { Rng, tf } from '@moebench/backend';
import { maxScoreAssignment } from '@moebench/base-layers';
import type { MoeLayer, MoeOutput, RouterContext, RoutingStats } from '@moebench/moe';
import { causalMask, dense, denseSplit, expertTokenMixing, gelu, layerNorm, makeVariable } from './ops.js';
import { initSpatialWeight } from './spatial-gating.js';
import { checkFraction, checkInteger, checkName, checkOptions, checkPositive, checkSeed, checkSequenceInput } from './validate.js';

/** The ways sMoE can assign the chunks of Z2 to experts. */
export const SMOE_ROUTING_MODES = ['deterministic', 'partial-prediction'] as const;

/** An sMoE routing mode. */
export type SmoeRouting = (typeof SMOE_ROUTING_MODES)[number];

/** Options of `createSmoe`. */
export interface SmoeOptions {
  /** Model width d (input and output channels). Required. */
  dModel: number;
  /** Maximum sequence length T, the size of the spatial weights. Required. */
  maxSeqLen: number;
  /** Number of experts E, each with its own [T, T] spatial matrix; Z2 is cut into E chunks of width h / E. Default: 4. */
  numExperts?: number;
  /** Gated width h: U maps d -> 2h, V maps h -> d; numExperts must divide it. Default: 3 * dModel. */
  hiddenSize?: number;
  /**
   * `deterministic` (default): chunk i always goes to expert i; no router, no look at the future.
   * `partial-prediction`: a router scores each chunk from the first `prefixFraction` of the
   * sequence and assigns chunks to experts one-to-one; see `createSmoe`.
   */
  routing?: SmoeRouting;
  /** Partial prediction: fraction of the sequence the router reads, and that carries no loss. Default: 0.2. */
  prefixFraction?: number;
  /** Standard deviation of the truncated-normal init of U, V and the router (biases start at zero). Default: 0.02. */
  initStd?: number;
  /** The spatial weights start uniform in +-(spatialInitEpsilon / maxSeqLen). Default: 1e-3. */
  spatialInitEpsilon?: number;
  /** Epsilon of the layer norm on Z2. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Seed of the initial weights. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names (`<name>/u/kernel`, `<name>/spatial_weights`, ...). Default: tfjs's automatic unique names. */
  name?: string;
}

/** Every option of an sMoE module, for the unknown-option check. */
const SMOE_OPTION_KEYS: Record<keyof SmoeOptions, true> = {
  dModel: true,
  maxSeqLen: true,
  numExperts: true,
  hiddenSize: true,
  routing: true,
  prefixFraction: true,
  initStd: true,
  spatialInitEpsilon: true,
  layerNormEpsilon: true,
  seed: true,
  name: true,
};

/** Resolved sMoE options. */
export type ResolvedSmoeOptions = Required<Omit<SmoeOptions, 'name'>> & { name?: string };

/** Output of one sMoE call. */
export interface SmoeOutput extends MoeOutput {
  /** The update [batch, seqLen, d] (the caller adds the residual). */
  output: tf.Tensor3D;
  /**
   * Partial prediction only: [batch, seqLen] float32, 0 at the prefix positions the router read
   * and 1 after them. The language-model loss must be computed only where it is 1, because the
   * outputs inside the prefix depend on later prefix tokens through the routing.
   */
  lossMask?: tf.Tensor2D;
  /**
   * Partial prediction only: the expert of each chunk, [batch * numExperts] (sequence b, chunk i
   * at b * numExperts + i). Deterministic routing leaves it out, since chunk i goes to expert i.
   */
  assignment?: Int32Array;
}

/** An sMoE module with its variables; a MoeLayer whose `apply` also returns the loss mask. */
export interface Smoe extends MoeLayer {
  /** The validated options with their defaults filled in. */
  readonly options: Readonly<ResolvedSmoeOptions>;
  /**
   * Runs the module on x [batch, seqLen, d], already layer-normalised by the caller, and returns
   * the update without the residual. Routing is the same in training and evaluation, so
   * `context` is not read. Call inside tf.tidy or a gradient scope.
   */
  apply(x: tf.Tensor, context?: RouterContext): SmoeOutput;
  /** Router prefix length for a sequence of `seqLen` tokens: max(1, floor(prefixFraction * seqLen)). */
  prefixLength(seqLen: number): number;
  /**
   * Every trainable variable in a stable order: U kernel [d, 2h] and bias [2h], Z2 norm gamma and
   * beta [h], spatial weights [E, T, T], spatial biases [E, T], V kernel [h, d] and bias [d]. With
   * partial prediction the router weight [maxPrefixLength, E] comes last.
   */
  readonly trainableVariables: tf.Variable[];
  /**
   * Stored parameters (the full [T, T] spatial matrices counted). Every token uses every expert
   * (each of its E chunks goes to a different one), so activePerToken equals total.
   */
  parameterCount(): { total: number; activePerToken: number };
  /**
   * Forward FLOPs per token (2 x multiply-adds): U (d * 2h), token mixing (seqLen * h, the same as
   * one spatial gating unit of width h whatever E is) and V (h * d). Partial prediction adds the
   * router's E * E * prefixLength multiply-adds per sequence, spread over its seqLen tokens.
   * Element-wise work is not counted. Default seqLen: maxSeqLen.
   */
  flopsPerToken(seqLen?: number): number;
}

/** The name sMoE's option errors start with. */
export const SMOE_OWNER = 'createSmoe';
const OWNER = SMOE_OWNER;

/**
 * Builds an sMoE module: Z = GELU(U(x)) split into Z1 and Z2 [T, h]; Z2 <- LN(Z2); Z2 is cut into
 * E chunks of h / E channels; the chunk routed to expert e is mixed by that expert's causal
 * Ws_e [T, T] and bias b_e [T]; the output is V(Z1 * Z2). All experts' mixing runs as one batched
 * product, which measured faster than a loop of E products (docs/algorithms/smlp.md has the figures).
 *
 * Partial prediction is our reading of a detail that Yu et al. (2022, "Efficient Language Modeling
 * with Sparse all-MLP") leave open: how chunks are routed without reading future tokens. Here: the prefix is the first P = max(1, floor(prefixFraction *
 * seqLen)) positions. The router feature of chunk i in sequence b is a [P] vector, at each prefix
 * position the mean of LN(Z2) over the chunk's channels. Its logits are that feature times the
 * router weight Wr [P, E], the top rows of a [maxPrefixLength, E] matrix. Each sequence's chunks go to
 * experts one-to-one (balanced top-1), by the assignment that maximises the summed logits. The
 * mixed chunk is scaled by its softmax probability for the chosen expert, as Switch scales an
 * expert's output, so the router gets a gradient. Outputs at prefix positions depend on later
 * prefix tokens, so `lossMask` excludes them; positions >= P - 1 are causal.
 */
export function createSmoe(options: SmoeOptions): Smoe {
  const resolved = resolveSmoeOptions(OWNER, options);
  const { dModel, maxSeqLen, numExperts, hiddenSize, routing, prefixFraction, initStd, spatialInitEpsilon, layerNormEpsilon, seed, name } =
    resolved;
  const chunkWidth = hiddenSize / numExperts;
  const rng = new Rng(seed);
  const prefixLength = (seqLen: number): number => Math.max(1, Math.floor(prefixFraction * seqLen));
  const maxPrefixLength = prefixLength(maxSeqLen);
  if (routing === 'partial-prediction' && maxPrefixLength >= maxSeqLen) {
    throw new RangeError(
      `${OWNER}: partial prediction needs a router prefix shorter than maxSeqLen, but prefixFraction ${prefixFraction} ` +
        `and maxSeqLen ${maxSeqLen} give a prefix of ${maxPrefixLength}; use maxSeqLen >= 2 and a smaller prefixFraction`,
    );
  }

  const uKernel = makeVariable(() => rng.fork('u').truncatedNormal([dModel, 2 * hiddenSize], initStd), name, 'u/kernel');
  const uBias = makeVariable(() => tf.zeros([2 * hiddenSize]), name, 'u/bias');
  const gamma = makeVariable(() => tf.ones([hiddenSize]), name, 'norm_gamma');
  const beta = makeVariable(() => tf.zeros([hiddenSize]), name, 'norm_beta');
  const spatialWeights = makeVariable(
    () => tf.stack(Array.from({ length: numExperts }, (_, e) => initSpatialWeight(rng.fork(`spatial-${e}`), maxSeqLen, spatialInitEpsilon))),
    name,
    'spatial_weights',
  );
  const spatialBiases = makeVariable(() => tf.ones([numExperts, maxSeqLen]), name, 'spatial_biases');
  const vKernel = makeVariable(() => rng.fork('v').truncatedNormal([hiddenSize, dModel], initStd), name, 'v/kernel');
  const vBias = makeVariable(() => tf.zeros([dModel]), name, 'v/bias');
  const router =
    routing === 'partial-prediction'
      ? makeVariable(() => rng.fork('router').truncatedNormal([maxPrefixLength, numExperts], initStd), name, 'router')
      : null;
  const mask = causalMask(maxSeqLen);
  tf.keep(mask);
  const variables = [uKernel, uBias, gamma, beta, spatialWeights, spatialBiases, vKernel, vBias, ...(router ? [router] : [])];

  const apply = (x: tf.Tensor): SmoeOutput => {
    checkSequenceInput('Smoe.apply', x.shape, dModel, maxSeqLen);
    const [batch, seqLen] = x.shape;
    if (router !== null && prefixLength(seqLen) >= seqLen) {
      throw new RangeError(
        `Smoe.apply: partial prediction leaves no position with loss in a sequence of ${seqLen} tokens ` +
          `(router prefix ${prefixLength(seqLen)}); pass sequences of at least 2 tokens`,
      );
    }

    // [seqLen * batch, 2h]: time-major rows, so that the projections and the layer norm run on
    // matrices with no reshapes on the tape
    const timeMajor = tf.reshape(tf.transpose(x, [1, 0, 2]), [seqLen * batch, dModel]) as tf.Tensor2D;
    // Z = GELU(U(x)) as its two halves [seqLen * batch, h], without splitting Z (a slow kernel on wasm)
    const [z1, z2] = denseSplit(timeMajor, uKernel as tf.Tensor2D, uBias as tf.Tensor1D, 2).map((half) => gelu(half) as tf.Tensor2D);
    const normalised = layerNorm(z2, gamma as tf.Tensor1D, beta as tf.Tensor1D, layerNormEpsilon);
    // [seqLen, batch * E, h / E]: one row per (sequence, chunk)
    let chunks = tf.reshape(normalised, [seqLen, batch * numExperts, chunkWidth]);

    let plan: ChunkPlan | null = null;
    if (router !== null) {
      plan = routeChunks(chunks, router as tf.Tensor2D, batch, numExperts, prefixLength(seqLen));
      // Put the chunk routed to expert e of sequence b at row b * E + e.
      chunks = tf.gather(chunks, plan.sourceRows, 1);
    }

    // [E, seqLen, batch * h / E]
    const byExpert = tf.reshape(tf.transpose(tf.reshape(chunks, [seqLen, batch, numExperts, chunkWidth]), [2, 0, 1, 3]), [
      numExperts,
      seqLen,
      batch * chunkWidth,
    ]) as tf.Tensor3D;
    const mixed = expertTokenMixing(byExpert, spatialWeights as tf.Tensor3D, spatialBiases as tf.Tensor2D, mask);
    // [seqLen, batch * E, h / E]
    let mixedChunks = tf.reshape(tf.transpose(tf.reshape(mixed, [numExperts, seqLen, batch, chunkWidth]), [1, 2, 0, 3]), [
      seqLen,
      batch * numExperts,
      chunkWidth,
    ]);
    if (plan !== null) {
      mixedChunks = tf.gather(mixedChunks, plan.targetRows, 1);
      mixedChunks = tf.mul(mixedChunks, tf.reshape(plan.gates, [1, batch * numExperts, 1]));
    }

    const gated = tf.mul(z1, tf.reshape(mixedChunks, [seqLen * batch, hiddenSize])) as tf.Tensor2D;
    const update = tf.transpose(tf.reshape(dense(gated, vKernel as tf.Tensor2D, vBias as tf.Tensor1D), [seqLen, batch, dModel]), [1, 0, 2]) as tf.Tensor3D;

    const zero = tf.scalar(0);
    return {
      output: update,
      auxLoss: zero,
      losses: {},
      stats: plan === null ? deterministicStats(batch, numExperts) : plan.stats,
      ...(plan === null ? {} : { lossMask: prefixLossMask(batch, seqLen, prefixLength(seqLen)), assignment: plan.expertOfChunk }),
    };
  };

  return {
    options: resolved,
    apply,
    prefixLength(seqLen) {
      checkInteger('Smoe.prefixLength', 'seqLen', seqLen);
      return prefixLength(seqLen);
    },
    trainableVariables: variables,
    parameterCount() {
      const total = variables.reduce((sum, variable) => sum + variable.size, 0);
      return { total, activePerToken: total };
    },
    flopsPerToken(seqLen = maxSeqLen) {
      checkInteger('Smoe.flopsPerToken', 'seqLen', seqLen);
      const dense = dModel * 2 * hiddenSize + seqLen * hiddenSize + hiddenSize * dModel;
      const routerPerToken = router === null ? 0 : (numExperts * numExperts * prefixLength(seqLen)) / seqLen;
      return 2 * (dense + routerPerToken);
    },
    dispose() {
      tf.dispose([...variables, mask]);
    },
  };
}

/** The routing of one partial-prediction call. */
interface ChunkPlan {
  /** Expert of each chunk, [batch * E]. */
  expertOfChunk: Int32Array;
  /** For each expert-ordered row b * E + e, the chunk row routed there (sequence b, expert e). */
  sourceRows: tf.Tensor1D;
  /** For each chunk row b * E + i, the expert-ordered row that contains chunk i of sequence b. */
  targetRows: tf.Tensor1D;
  /** Softmax probability of each chunk for its expert, [batch * E], differentiable. */
  gates: tf.Tensor1D;
  stats: RoutingStats;
}

/**
 * Scores each chunk from the prefix and assigns the chunks of each sequence to experts one-to-one.
 * `chunks` is [seqLen, batch * E, h / E].
 */
function routeChunks(chunks: tf.Tensor, router: tf.Tensor2D, batch: number, numExperts: number, prefix: number): ChunkPlan {
  const rows = batch * numExperts;
  // [batch * E, prefix]: per chunk, the mean of its channels at each prefix position
  const features = tf.transpose(tf.mean(tf.slice(chunks, [0, 0, 0], [prefix, rows, -1]), 2)) as tf.Tensor2D;
  const weight = router.shape[0] === prefix ? router : (tf.slice(router, [0, 0], [prefix, numExperts]) as tf.Tensor2D);
  // [batch * E, E]
  const logits = tf.matMul(features, weight);
  const probs = tf.softmax(logits);
  const scores = logits.dataSync();
  const probValues = probs.dataSync();

  const expertOfChunk = new Int32Array(rows);
  const source = new Int32Array(rows);
  let entropy = 0;
  for (let b = 0; b < batch; b++) {
    const slotOf = maxScoreAssignment(scores.subarray(b * numExperts * numExperts, (b + 1) * numExperts * numExperts), numExperts);
    for (let chunk = 0; chunk < numExperts; chunk++) {
      expertOfChunk[b * numExperts + chunk] = slotOf[chunk];
      source[b * numExperts + slotOf[chunk]] = b * numExperts + chunk;
    }
  }
  for (let row = 0; row < rows; row++) {
    for (let e = 0; e < numExperts; e++) {
      const p = probValues[row * numExperts + e];
      if (p > 0) entropy -= p * Math.log(p);
    }
  }
  const target = Int32Array.from(expertOfChunk, (expert, row) => Math.floor(row / numExperts) * numExperts + expert);

  const oneHot = tf.oneHot(tf.tensor1d(expertOfChunk, 'int32'), numExperts);
  const gates = tf.sum(tf.mul(probs, oneHot), 1) as tf.Tensor1D;
  let identity = 0;
  expertOfChunk.forEach((expert, row) => {
    if (expert === row % numExperts) identity++;
  });

  return {
    expertOfChunk,
    sourceRows: tf.tensor1d(source, 'int32'),
    targetRows: tf.tensor1d(target, 'int32'),
    gates,
    stats: {
      tokensPerExpert: new Array(numExperts).fill(batch),
      keptPerExpert: new Array(numExperts).fill(batch),
      droppedFraction: 0,
      routerEntropy: entropy / rows,
      maxOverMeanLoad: 1,
      idleExperts: 0,
      extra: { chunksOnOwnExpert: identity / rows },
    },
  };
}

/** Statistics of deterministic routing: every expert gets its own chunk of every sequence. */
function deterministicStats(batch: number, numExperts: number): RoutingStats {
  return {
    tokensPerExpert: new Array(numExperts).fill(batch),
    keptPerExpert: new Array(numExperts).fill(batch),
    droppedFraction: 0,
    routerEntropy: null,
    maxOverMeanLoad: 1,
    idleExperts: 0,
    extra: {},
  };
}

/** [batch, seqLen] float32 with 0 at positions < prefix and 1 from there on. */
function prefixLossMask(batch: number, seqLen: number, prefix: number): tf.Tensor2D {
  const values = new Float32Array(batch * seqLen);
  for (let b = 0; b < batch; b++) values.fill(1, b * seqLen + prefix, (b + 1) * seqLen);
  return tf.tensor2d(values, [batch, seqLen]);
}

/** Validates sMoE options and fills in the defaults. */
export function resolveSmoeOptions(owner: string, options: SmoeOptions): ResolvedSmoeOptions {
  checkOptions(owner, options, SMOE_OPTION_KEYS);
  const dModel = checkInteger(owner, 'dModel', options.dModel);
  const numExperts = checkInteger(owner, 'numExperts', options.numExperts ?? 4);
  const hiddenSize = checkInteger(owner, 'hiddenSize', options.hiddenSize ?? 3 * dModel);
  if (hiddenSize % numExperts !== 0) {
    throw new RangeError(
      `${owner}: numExperts must divide hiddenSize (each expert mixes a chunk of hiddenSize / numExperts channels), ` +
        `received hiddenSize ${hiddenSize}${options.hiddenSize === undefined ? ' (the default 3 * dModel)' : ''} and numExperts ${numExperts}`,
    );
  }
  const routing = options.routing ?? 'deterministic';
  if (!(SMOE_ROUTING_MODES as readonly string[]).includes(routing)) {
    throw new RangeError(`${owner}: routing must be one of ${SMOE_ROUTING_MODES.join(', ')}, received ${String(routing)}`);
  }
  return {
    dModel,
    maxSeqLen: checkInteger(owner, 'maxSeqLen', options.maxSeqLen),
    numExperts,
    hiddenSize,
    routing,
    prefixFraction: checkFraction(owner, 'prefixFraction', options.prefixFraction ?? 0.2),
    initStd: checkPositive(owner, 'initStd', options.initStd ?? 0.02),
    spatialInitEpsilon: checkPositive(owner, 'spatialInitEpsilon', options.spatialInitEpsilon ?? 1e-3),
    layerNormEpsilon: checkPositive(owner, 'layerNormEpsilon', options.layerNormEpsilon ?? 1e-5),
    seed: checkSeed(owner, 'seed', options.seed ?? 0),
    name: checkName(owner, 'name', options.name),
  };
}

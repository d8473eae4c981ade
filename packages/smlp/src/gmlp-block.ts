/**
 * The gMLP block: y = x + V(SGU(GELU(U(LN(x))))), with U: d -> 2h, V: h -> d and a causal spatial
 * gating unit (SGU).
 */
import { Rng, tf } from '@moebench/backend';
import { dense, denseSplit, gelu, layerNorm, makeVariable } from './ops.js';
import { createSpatialGatingUnit, type SpatialGatingUnit } from './spatial-gating.js';
import { checkInteger, checkName, checkOptions, checkPositive, checkSeed, checkSequenceInput } from './validate.js';

/** Options of `createGmlpBlock`. */
export interface GmlpBlockOptions {
  /** Model width d (input and output channels). Required. */
  dModel: number;
  /** Maximum sequence length T, the size of the spatial weights. Required. */
  maxSeqLen: number;
  /** Gated width h: U maps d -> 2h, V maps h -> d. Default: 3 * dModel (U's output is 6d, as in gMLP). */
  hiddenSize?: number;
  /** Standard deviation of the truncated-normal init of U and V (biases start at zero). Default: 0.02. */
  initStd?: number;
  /** The spatial weights start uniform in +-(spatialInitEpsilon / maxSeqLen). Default: 1e-3. */
  spatialInitEpsilon?: number;
  /** Epsilon of both layer norms. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Seed of the initial weights. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names (`<name>/u/kernel`, `<name>/sgu/spatial_weight`, ...). Default: tfjs's automatic unique names. */
  name?: string;
}

/** Every option of a gMLP block, for the unknown-option check. */
const GMLP_OPTION_KEYS: Record<keyof GmlpBlockOptions, true> = {
  dModel: true,
  maxSeqLen: true,
  hiddenSize: true,
  initStd: true,
  spatialInitEpsilon: true,
  layerNormEpsilon: true,
  seed: true,
  name: true,
};

/** Resolved gMLP block options. */
export type ResolvedGmlpBlockOptions = Required<Omit<GmlpBlockOptions, 'name'>> & { name?: string };

/** A gMLP block with its variables. */
export interface GmlpBlock {
  /** The validated options with their defaults filled in. */
  readonly options: Readonly<ResolvedGmlpBlockOptions>;
  /** Runs the block on x [batch, seqLen, d] and returns [batch, seqLen, d]. Call inside tf.tidy or a gradient scope. */
  apply(x: tf.Tensor3D): tf.Tensor3D;
  /**
   * Every trainable variable in a stable order: norm gamma and beta [d], U kernel [d, 2h] and bias
   * [2h], the SGU's variables, V kernel [h, d] and bias [d].
   */
  readonly trainableVariables: tf.Variable[];
  /** Stored parameters (see `SpatialGatingUnit.parameterCount`); every token uses all of them. */
  parameterCount(): { total: number; activePerToken: number };
  /**
   * Forward FLOPs per token, 2 x the multiply-adds of the three products: U (d * 2h), token mixing
   * (seqLen * h, the full seqLen because the masked product runs every multiply-add) and V (h * d).
   * Element-wise work (norms, GELU, gating, biases) is not counted. Default seqLen: maxSeqLen.
   */
  flopsPerToken(seqLen?: number): number;
  /** Releases the variables. */
  dispose(): void;
}

const OWNER = 'createGmlpBlock';

/**
 * Builds a gMLP block. Freshly built, its spatial gating unit passes Z1 through almost unchanged,
 * so the block starts as the plain FFN x + V(Z1), Z1 the first h channels of GELU(U(LN(x))).
 *
 * The block works time-major inside: it transposes x to [seqLen, batch, d] once, so the token
 * mixing is one plain 2D matMul, and transposes the result back.
 */
export function createGmlpBlock(options: GmlpBlockOptions): GmlpBlock {
  const resolved = resolveGmlpBlockOptions(OWNER, options);
  const { dModel, maxSeqLen, hiddenSize, initStd, spatialInitEpsilon, layerNormEpsilon, seed, name } = resolved;
  const rng = new Rng(seed);

  const normGamma = makeVariable(() => tf.ones([dModel]), name, 'norm_gamma');
  const normBeta = makeVariable(() => tf.zeros([dModel]), name, 'norm_beta');
  const uKernel = makeVariable(() => rng.fork('u').truncatedNormal([dModel, 2 * hiddenSize], initStd), name, 'u/kernel');
  const uBias = makeVariable(() => tf.zeros([2 * hiddenSize]), name, 'u/bias');
  const sgu: SpatialGatingUnit = createSpatialGatingUnit({
    hiddenSize,
    maxSeqLen,
    spatialInitEpsilon,
    layerNormEpsilon,
    seed: `${seed}/sgu`,
    name: name === undefined ? undefined : `${name}/sgu`,
  });
  const vKernel = makeVariable(() => rng.fork('v').truncatedNormal([hiddenSize, dModel], initStd), name, 'v/kernel');
  const vBias = makeVariable(() => tf.zeros([dModel]), name, 'v/bias');
  const variables = [normGamma, normBeta, uKernel, uBias, ...sgu.trainableVariables, vKernel, vBias];

  return {
    options: resolved,
    apply(x) {
      checkSequenceInput('GmlpBlock.apply', x.shape, dModel, maxSeqLen);
      const [batch, seqLen] = x.shape;
      // [seqLen * batch, d]: time-major rows, so that every product below is a plain 2D matMul
      const rows = tf.reshape(tf.transpose(x, [1, 0, 2]), [seqLen * batch, dModel]) as tf.Tensor2D;
      const normalised = layerNorm(rows, normGamma as tf.Tensor1D, normBeta as tf.Tensor1D, layerNormEpsilon) as tf.Tensor2D;
      // Z = GELU(U(normalised)) as its two halves [seqLen * batch, h], without splitting Z
      const [z1, z2] = denseSplit(normalised, uKernel as tf.Tensor2D, uBias as tf.Tensor1D, 2).map((half) => gelu(half) as tf.Tensor2D);
      // [seqLen * batch, h]
      const gated = sgu.applyTimeMajorRows(z1, z2, seqLen);
      const update = dense(gated, vKernel as tf.Tensor2D, vBias as tf.Tensor1D);
      return tf.add(x, tf.transpose(tf.reshape(update, [seqLen, batch, dModel]), [1, 0, 2])) as tf.Tensor3D;
    },
    trainableVariables: variables,
    parameterCount() {
      const total = 2 * dModel + dModel * 2 * hiddenSize + 2 * hiddenSize + sgu.parameterCount().total + hiddenSize * dModel + dModel;
      return { total, activePerToken: total };
    },
    flopsPerToken(seqLen = maxSeqLen) {
      checkInteger('GmlpBlock.flopsPerToken', 'seqLen', seqLen);
      return 2 * (dModel * 2 * hiddenSize + hiddenSize * dModel) + sgu.flopsPerToken(seqLen);
    },
    dispose() {
      sgu.dispose();
      tf.dispose([normGamma, normBeta, uKernel, uBias, vKernel, vBias]);
    },
  };
}

/**
 * Checks `options` as `createGmlpBlock` does, without creating any variable.
 *
 * @throws the same error `createGmlpBlock` raises for these options.
 */
export function checkGmlpBlockOptions(options: GmlpBlockOptions): void {
  resolveGmlpBlockOptions(OWNER, options);
}

/** Validates gMLP block options and fills in the defaults. */
export function resolveGmlpBlockOptions(owner: string, options: GmlpBlockOptions): ResolvedGmlpBlockOptions {
  checkOptions(owner, options, GMLP_OPTION_KEYS);
  const dModel = checkInteger(owner, 'dModel', options.dModel);
  return {
    dModel,
    maxSeqLen: checkInteger(owner, 'maxSeqLen', options.maxSeqLen),
    hiddenSize: checkInteger(owner, 'hiddenSize', options.hiddenSize ?? 3 * dModel),
    initStd: checkPositive(owner, 'initStd', options.initStd ?? 0.02),
    spatialInitEpsilon: checkPositive(owner, 'spatialInitEpsilon', options.spatialInitEpsilon ?? 1e-3),
    layerNormEpsilon: checkPositive(owner, 'layerNormEpsilon', options.layerNormEpsilon ?? 1e-5),
    seed: checkSeed(owner, 'seed', options.seed ?? 0),
    name: checkName(owner, 'name', options.name),
  };
}

/**
 * The causal spatial gating unit of gMLP: split Z into Z1 and Z2, normalise Z2, mix it across the
 * sequence with a lower-triangular matrix, and gate Z1 with the result.
 */
import { Rng, tf } from '@moebench/backend';
import { causalMask, causalTokenMixing, layerNorm, makeVariable } from './ops.js';
import { checkInteger, checkName, checkOptions, checkPositive, checkSeed, checkSequenceInput } from './validate.js';

/** Options of `createSpatialGatingUnit`. */
export interface SpatialGatingUnitOptions {
  /** Width h of each half: the unit takes Z [batch, seqLen, 2h] and returns [batch, seqLen, h]. Required. */
  hiddenSize: number;
  /** Maximum sequence length T, the size of the spatial weights; shorter sequences use the top-left block. Required. */
  maxSeqLen: number;
  /** The spatial weights start uniform in +-(spatialInitEpsilon / maxSeqLen). Default: 1e-3. */
  spatialInitEpsilon?: number;
  /** Epsilon of the layer norm on Z2. Default: 1e-5. */
  layerNormEpsilon?: number;
  /** Seed of the initial weights. Default: 0. */
  seed?: number | string;
  /** Prefix of the variable names (`<name>/spatial_weight`, ...). Default: tfjs's automatic unique names. */
  name?: string;
}

/** A causal spatial gating unit with its variables. */
export interface SpatialGatingUnit {
  /** The validated options with their defaults filled in. */
  readonly options: Readonly<Required<Omit<SpatialGatingUnitOptions, 'name'>>> & { name?: string };
  /** Gates z [batch, seqLen, 2h] and returns [batch, seqLen, h]. Call inside tf.tidy or a gradient scope. */
  apply(z: tf.Tensor3D): tf.Tensor3D;
  /** The same as `apply` on time-major input z [seqLen, batch, 2h], returning [seqLen, batch, h] with no transposes. */
  applyTimeMajor(z: tf.Tensor3D): tf.Tensor3D;
  /**
   * The same as `applyTimeMajor` on its two halves flattened to rows: z1 and z2 [seqLen * batch, h]
   * (row t * batch + b holds position t of sequence b; z1 the first h channels of Z, z2 the last),
   * returning [seqLen * batch, h]. A caller that projects Z itself can compute the halves directly
   * (`denseSplit`) and skip the split of Z, a slow kernel on wasm.
   */
  applyTimeMajorRows(z1: tf.Tensor2D, z2: tf.Tensor2D, seqLen: number): tf.Tensor2D;
  /** Spatial weight [T, T] (upper triangle masked), spatial bias [T], layer-norm gamma and beta [h]. */
  readonly trainableVariables: tf.Variable[];
  /**
   * Stored parameters (the full [T, T] spatial weight counted, although its upper triangle is
   * masked and stays zero); every token uses all of them.
   */
  parameterCount(): { total: number; activePerToken: number };
  /**
   * Forward FLOPs per token (2 x multiply-adds) of the token mixing: 2 * seqLen * h. The full
   * seqLen is counted, not the causal average seqLen / 2, because the masked [T, T] x [T, h]
   * product runs every multiply-add. Default seqLen: maxSeqLen.
   */
  flopsPerToken(seqLen?: number): number;
  /** Releases the variables. */
  dispose(): void;
}

const OWNER = 'createSpatialGatingUnit';

/** Every option of a spatial gating unit, for the unknown-option check. */
const SGU_OPTION_KEYS: Record<keyof SpatialGatingUnitOptions, true> = {
  hiddenSize: true,
  maxSeqLen: true,
  spatialInitEpsilon: true,
  layerNormEpsilon: true,
  seed: true,
  name: true,
};

/**
 * Builds a causal spatial gating unit. Z2 <- LN(Z2); Z2 <- Ws Z2 + b along the sequence axis, Ws
 * masked to its lower triangle; output Z1 * Z2. With Ws near zero and b = 1 it starts as output
 * close to Z1, so the gMLP block around it starts as a plain FFN.
 */
export function createSpatialGatingUnit(options: SpatialGatingUnitOptions): SpatialGatingUnit {
  const resolved = resolveSpatialGatingOptions(OWNER, options);
  const { hiddenSize, maxSeqLen, spatialInitEpsilon, layerNormEpsilon, seed, name } = resolved;
  const rng = new Rng(seed).fork('spatial-gating');

  const spatialWeight = makeVariable(() => initSpatialWeight(rng, maxSeqLen, spatialInitEpsilon), name, 'spatial_weight');
  const spatialBias = makeVariable(() => tf.ones([maxSeqLen]), name, 'spatial_bias');
  const gamma = makeVariable(() => tf.ones([hiddenSize]), name, 'norm_gamma');
  const beta = makeVariable(() => tf.zeros([hiddenSize]), name, 'norm_beta');
  const mask = causalMask(maxSeqLen);
  tf.keep(mask);

  // z1 and z2 [seqLen * batch, h], the two halves of Z in time-major rows: returns [seqLen * batch, h].
  // Matrices keep the layer norm free of reshapes, because each reshape on the tape costs a kernel
  // and a saved copy.
  const gateRows = (z1: tf.Tensor2D, z2: tf.Tensor2D, seqLen: number): tf.Tensor2D => {
    const batch = z1.shape[0] / seqLen;
    const normalised = layerNorm(z2, gamma as tf.Tensor1D, beta as tf.Tensor1D, layerNormEpsilon);
    // [seqLen, batch * h]: every (batch, channel) column is mixed by the same matrix
    const columns = tf.reshape(normalised, [seqLen, batch * hiddenSize]) as tf.Tensor2D;
    const mixed = causalTokenMixing(columns, spatialWeight as tf.Tensor2D, spatialBias as tf.Tensor1D, mask);
    return tf.mul(z1, tf.reshape(mixed, [seqLen * batch, hiddenSize])) as tf.Tensor2D;
  };
  const gateTimeMajor = (z: tf.Tensor3D): tf.Tensor3D => {
    const [seqLen, batch] = z.shape;
    const [z1, z2] = tf.split(tf.reshape(z, [seqLen * batch, 2 * hiddenSize]), 2, 1) as tf.Tensor2D[];
    return tf.reshape(gateRows(z1, z2, seqLen), [seqLen, batch, hiddenSize]) as tf.Tensor3D;
  };

  return {
    options: resolved,
    apply(z) {
      checkSequenceInput('SpatialGatingUnit.apply', z.shape, 2 * hiddenSize, maxSeqLen);
      const timeMajor = tf.transpose(z, [1, 0, 2]) as tf.Tensor3D;
      return tf.transpose(gateTimeMajor(timeMajor), [1, 0, 2]) as tf.Tensor3D;
    },
    applyTimeMajor(z) {
      checkSequenceInput('SpatialGatingUnit.applyTimeMajor', [z.shape[1], z.shape[0], z.shape[2]], 2 * hiddenSize, maxSeqLen);
      return gateTimeMajor(z);
    },
    applyTimeMajorRows(z1, z2, seqLen) {
      checkInteger('SpatialGatingUnit.applyTimeMajorRows', 'seqLen', seqLen);
      const expected = `[seqLen * batch, ${hiddenSize}] with seqLen = ${seqLen}`;
      for (const [label, half] of [['z1', z1], ['z2', z2]] as const) {
        if (half.rank !== 2 || half.shape[0] % seqLen !== 0 || half.shape[0] !== z1.shape[0] || half.shape[1] !== hiddenSize) {
          throw new RangeError(
            `SpatialGatingUnit.applyTimeMajorRows: ${label} must be ${expected} (and z1 and z2 the same shape), ` +
              `received shape [${half.shape.join(', ')}]`,
          );
        }
      }
      checkSequenceInput('SpatialGatingUnit.applyTimeMajorRows', [z1.shape[0] / seqLen, seqLen, 2 * hiddenSize], 2 * hiddenSize, maxSeqLen);
      return gateRows(z1, z2, seqLen);
    },
    trainableVariables: [spatialWeight, spatialBias, gamma, beta],
    parameterCount() {
      const total = maxSeqLen * maxSeqLen + maxSeqLen + 2 * hiddenSize;
      return { total, activePerToken: total };
    },
    flopsPerToken(seqLen = maxSeqLen) {
      checkInteger('SpatialGatingUnit.flopsPerToken', 'seqLen', seqLen);
      return 2 * seqLen * hiddenSize;
    },
    dispose() {
      tf.dispose([spatialWeight, spatialBias, gamma, beta, mask]);
    },
  };
}

/** Validates the options of a spatial gating unit and fills in the defaults. */
export function resolveSpatialGatingOptions(
  owner: string,
  options: SpatialGatingUnitOptions,
): Required<Omit<SpatialGatingUnitOptions, 'name'>> & { name?: string } {
  checkOptions(owner, options, SGU_OPTION_KEYS, 'hiddenSize and maxSeqLen');
  return {
    hiddenSize: checkInteger(owner, 'hiddenSize', options.hiddenSize),
    maxSeqLen: checkInteger(owner, 'maxSeqLen', options.maxSeqLen),
    spatialInitEpsilon: checkPositive(owner, 'spatialInitEpsilon', options.spatialInitEpsilon ?? 1e-3),
    layerNormEpsilon: checkPositive(owner, 'layerNormEpsilon', options.layerNormEpsilon ?? 1e-5),
    seed: checkSeed(owner, 'seed', options.seed ?? 0),
    name: checkName(owner, 'name', options.name),
  };
}

/**
 * Draws a [T, T] spatial weight: uniform in +-(epsilon / T) on and below the diagonal, zero above
 * it (the mask keeps it there), so the stored values equal the values the unit uses.
 */
export function initSpatialWeight(rng: Rng, maxSeqLen: number, epsilon: number): tf.Tensor2D {
  const bound = epsilon / maxSeqLen;
  const values = rng.uniformArray(maxSeqLen * maxSeqLen, -bound, bound);
  for (let row = 0; row < maxSeqLen; row++) {
    for (let col = row + 1; col < maxSeqLen; col++) values[row * maxSeqLen + col] = 0;
  }
  return tf.tensor2d(values, [maxSeqLen, maxSeqLen]);
}

import { sparseBlockIndices, type ResolvedModelConfig } from './config.js';
import { smlpSparseWidths } from './smlp-widths.js';
import { trainingExpertRowsPerToken } from './sparse-feed-forward.js';
import type { Architecture, ModelAccounting } from './types.js';

/**
 * Parameters and per-token multiply-adds of one part of a model. FLOPs are 2 x multiply-adds of the
 * matrix products a token's forward pass runs: weight projections, attention scores QK^T and the
 * weighted sum AV, spatial gating, the LM head. Elementwise work (norms, activations, softmax, gates)
 * is not counted, by the usual convention.
 */
export interface PartAccount {
  /** Trainable parameters. */
  total: number;
  /** Parameters one token uses: the total minus the experts it is not routed to. */
  active: number;
  /** Multiply-adds per token in a forward pass. */
  multiplyAdds: number;
}

const sum = (parts: PartAccount[]): PartAccount =>
  parts.reduce((acc, part) => ({ total: acc.total + part.total, active: acc.active + part.active, multiplyAdds: acc.multiplyAdds + part.multiplyAdds }), {
    total: 0,
    active: 0,
    multiplyAdds: 0,
  });

const dense = (total: number, multiplyAdds: number): PartAccount => ({ total, active: total, multiplyAdds });

/** A layer norm over `width` (scale and shift). */
const layerNorm = (width: number): PartAccount => dense(2 * width, 0);

/** A dense layer with bias. */
const linear = (inputs: number, outputs: number): PartAccount => dense(inputs * outputs + outputs, inputs * outputs);

/** A GELU FFN d -> f -> d with biases. */
const feedForward = (dModel: number, hidden: number): PartAccount => sum([linear(dModel, hidden), linear(hidden, dModel)]);

/**
 * Causal self-attention with a fused QKV projection: 4d^2 projection multiply-adds per token, plus
 * T x d for the scores and T x d for AV. The full T x T score matrix is computed and then masked, so
 * a token is charged the whole sequence length T, not its position.
 */
function attention(config: ResolvedModelConfig): PartAccount {
  const { dModel, seqLen } = config;
  const projections = sum([linear(dModel, 3 * dModel), linear(dModel, dModel)]);
  return { ...projections, multiplyAdds: projections.multiplyAdds + 2 * seqLen * dModel };
}

/**
 * E experts of width `hidden`, k of which a token uses, plus a router of `routerParameters`
 * parameters and `routerMultiplyAdds` multiply-adds per token. The experts run `rows` rows per token
 * in training: k for a dropless layer, capacity factor x k when the [E, C, d] buffer is computed with
 * its padding slots. Active parameters stay k experts either way.
 */
function experts(config: ResolvedModelConfig, hidden: number, k: number, rows: number, routerParameters: number, routerMultiplyAdds: number): PartAccount {
  const one = feedForward(config.dModel, hidden);
  return {
    total: config.experts * one.total + routerParameters,
    active: k * one.total + routerParameters,
    multiplyAdds: rows * one.multiplyAdds + routerMultiplyAdds,
  };
}

/**
 * Counts a BASE layer: centroids [E, d] score every token against every expert; each expert is `sublayers`
 * residual FFNs, each with its own layer norm. The layer reads x itself, so there is no pre-norm.
 */
function baseExperts(dModel: number, count: number, hidden: number, sublayers: number): PartAccount {
  const one = feedForward(dModel, hidden);
  const perExpert = sublayers * (one.total + 2 * dModel);
  return { total: count * perExpert + dModel * count, active: perExpert + dModel * count, multiplyAdds: sublayers * one.multiplyAdds + dModel * count };
}

/** Residual FFN sublayers per BASE expert: config.base.sublayers, default 1 as in @moebench/base-layers. */
function baseSublayers(config: ResolvedModelConfig): number {
  const value = config.base.sublayers;
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`Invalid model config: base.sublayers must be a positive integer, received ${String(value)}.`);
  }
  return value;
}

/** Counts the FFN sublayer (with its pre-norm) of a Transformer-family block of `architecture`. */
function transformerFeedForward(architecture: Architecture, config: ResolvedModelConfig, sparse: boolean): PartAccount {
  const { dModel, ffnHidden, experts: count } = config;
  if (!sparse) return sum([layerNorm(dModel), feedForward(dModel, ffnHidden)]);
  switch (architecture) {
    case 'switch':
    case 'gshard': {
      const k = architecture === 'switch' ? 1 : 2;
      const rows = trainingExpertRowsPerToken(architecture, config);
      return sum([layerNorm(dModel), experts(config, ffnHidden, k, rows, dModel * count, dModel * count)]);
    }
    case 'hash':
      return sum([layerNorm(dModel), experts(config, ffnHidden, 1, trainingExpertRowsPerToken('hash', config), 0, 0)]);
    case 'base':
      return baseExperts(dModel, count, ffnHidden, baseSublayers(config));
    default:
      throw new Error(`${architecture} has no sparse Transformer FFN.`);
  }
}

/** Accounting of the Transformer-family models: embeddings, blocks, final norm, tied head. */
function transformerFamily(architecture: Architecture, config: ResolvedModelConfig): PartAccount {
  const { vocabSize, dModel, seqLen, layers } = config;
  const sparse = new Set(architecture === 'transformer' ? [] : sparseBlockIndices(config));
  const parts: PartAccount[] = [dense(vocabSize * dModel, 0), dense(seqLen * dModel, 0)];
  for (let i = 0; i < layers; i++) {
    parts.push(layerNorm(dModel), attention(config), transformerFeedForward(architecture, config, sparse.has(i)));
  }
  parts.push(layerNorm(dModel), dense(0, dModel * vocabSize));
  return sum(parts);
}

/**
 * Counts a gMLP block: LN(d), U d -> 2h, the spatial gating unit (LN(h), Ws [T, T] stored in full, b [T]),
 * V h -> d. The masked T x T product runs every multiply-add, so token mixing costs T x h per token.
 */
function gmlpBlock(config: ResolvedModelConfig): PartAccount {
  const { dModel, ffnHidden: hidden, seqLen } = config;
  const spatial = dense(seqLen * seqLen + seqLen + 2 * hidden, seqLen * hidden);
  return sum([layerNorm(dModel), linear(dModel, 2 * hidden), spatial, linear(hidden, dModel)]);
}

/** Accounting of gMLP: embedding, blocks, final norm, tied head; no position embedding. */
function gmlp(config: ResolvedModelConfig): PartAccount {
  const { vocabSize, dModel, layers } = config;
  const parts: PartAccount[] = [dense(vocabSize * dModel, 0)];
  for (let i = 0; i < layers; i++) parts.push(gmlpBlock(config));
  parts.push(layerNorm(dModel), dense(0, dModel * vocabSize));
  return sum(parts);
}

/**
 * Counts an sMLP sparse block: LN(d); sMoE (U d -> 2h, LN(h), E spatial matrices [T, T] and biases [T]
 * stored in full, V h -> d, and with partial prediction a router [P, E], P = max(1,
 * floor(prefixFraction x T))); then tMoE, a BASE layer. Every token uses all sMoE experts (each of
 * its chunks goes to one). sMoE token mixing costs T x h per token whatever E is. The partial-
 * prediction router costs E x E x P per sequence, spread over its T tokens.
 */
function smlpSparseBlock(config: ResolvedModelConfig): PartAccount {
  const { dModel, seqLen } = config;
  const widths = smlpSparseWidths(config);
  const { smoeExperts, smoeHidden: hidden } = widths;
  const prefix = Math.max(1, Math.floor(widths.prefixFraction * seqLen));
  const spatial = dense(smoeExperts * (seqLen * seqLen + seqLen) + 2 * hidden, seqLen * hidden);
  const router = widths.partialPrediction ? dense(prefix * smoeExperts, (smoeExperts * smoeExperts * prefix) / seqLen) : dense(0, 0);
  const tmoe = baseExperts(dModel, widths.tmoeExperts, widths.tmoeHidden, widths.tmoeSublayers);
  return sum([layerNorm(dModel), linear(dModel, 2 * hidden), spatial, linear(hidden, dModel), router, tmoe]);
}

/** Accounting of sMLP: embedding, gMLP and sparse blocks, final norm, tied head. */
function smlp(config: ResolvedModelConfig): PartAccount {
  const { vocabSize, dModel, layers } = config;
  const sparse = new Set(sparseBlockIndices(config));
  const parts: PartAccount[] = [dense(vocabSize * dModel, 0)];
  for (let i = 0; i < layers; i++) parts.push(sparse.has(i) ? smlpSparseBlock(config) : gmlpBlock(config));
  parts.push(layerNorm(dModel), dense(0, dModel * vocabSize));
  return sum(parts);
}

/** Breaks a model's accounting into parameters and multiply-adds per token. */
export function accountParts(architecture: Architecture, config: ResolvedModelConfig): PartAccount {
  switch (architecture) {
    case 'transformer':
    case 'switch':
    case 'gshard':
    case 'hash':
    case 'base':
      return transformerFamily(architecture, config);
    case 'gmlp':
      return gmlp(config);
    case 'smlp':
      return smlp(config);
    default:
      throw new Error(`No accounting for architecture "${architecture}".`);
  }
}

/**
 * Computes total parameters, active parameters per token and forward FLOPs per token (2 x
 * multiply-adds) of `architecture` from its resolved config, without building the model.
 */
export function accountModel(architecture: Architecture, config: ResolvedModelConfig): ModelAccounting {
  const parts = accountParts(architecture, config);
  return { totalParameters: parts.total, activeParametersPerToken: parts.active, forwardFlopsPerToken: 2 * parts.multiplyAdds };
}

import type { ResolvedModelConfig } from './config.js';

/** The widths and expert counts of an sMLP sparse block, defaults filled in from the model config. */
export interface SmlpSparseWidths {
  /** sMoE experts (chunks of the gated half). */
  smoeExperts: number;
  /** sMoE gated width h. */
  smoeHidden: number;
  /** tMoE (BASE) experts. */
  tmoeExperts: number;
  /** tMoE expert FFN width. */
  tmoeHidden: number;
  /** Residual FFN sublayers per tMoE expert. */
  tmoeSublayers: number;
  /** Whether sMoE routes by partial prediction. */
  partialPrediction: boolean;
  /** Partial prediction: fraction of the sequence the router reads. */
  prefixFraction: number;
}

/**
 * Reads the sparse-block widths from `config`: `smlp.smoe.numExperts` and `smlp.tmoe.numExperts`
 * default to `experts`, `smlp.smoe.hiddenSize` and `smlp.tmoe.hiddenSize` to `ffnHidden`.
 */
export function smlpSparseWidths(config: ResolvedModelConfig): SmlpSparseWidths {
  const smoe = (config.smlp.smoe ?? {}) as Record<string, unknown>;
  const tmoe = (config.smlp.tmoe ?? {}) as Record<string, unknown>;
  const number = (value: unknown, fallback: number) => (typeof value === 'number' ? value : fallback);
  return {
    smoeExperts: number(smoe.numExperts, config.experts),
    smoeHidden: number(smoe.hiddenSize, config.ffnHidden),
    tmoeExperts: number(tmoe.numExperts, config.experts),
    tmoeHidden: number(tmoe.hiddenSize, config.ffnHidden),
    tmoeSublayers: number(tmoe.sublayers, 1),
    partialPrediction: smoe.routing === 'partial-prediction',
    prefixFraction: number(smoe.prefixFraction, 0.2),
  };
}

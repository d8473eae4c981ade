import { accountModel } from './accounting.js';
import { smlpSparseWidths } from './smlp-widths.js';
import { checkArchitecture, defaultHidden, resolveConfig, TRANSFORMER_FAMILY, type ModelConfig } from './config.js';
import { ARCHITECTURES, type Architecture, type ModelAccounting } from './types.js';

/** Options of `matchCompute`. */
export interface ComputeMatchOptions {
  /** Architectures to size. Default: all seven. */
  architectures?: readonly string[];
  /**
   * Widths to change. `both` (default): dModel and the hidden width, keeping hidden / dModel as close
   * to the base ratio as the tolerance allows. `dModel`: dModel alone, hidden width = base ratio x
   * dModel. `hidden`: the hidden width alone, at the base dModel.
   */
  vary?: 'both' | 'dModel' | 'hidden';
  /** Largest allowed relative distance |flops - target| / target. Default: 0.05. */
  tolerance?: number;
  /** dModel is a multiple of this (and of heads in the Transformer family). Default: 8. */
  dModelMultiple?: number;
}

/** One architecture sized to the target. */
export interface ComputeMatch {
  architecture: Architecture;
  /** The base config with the chosen dModel and ffnHidden. */
  config: ModelConfig;
  accounting: ModelAccounting;
  /** (forwardFlopsPerToken - target) / target. */
  relativeError: number;
}

/**
 * Picks, for each architecture, the widths that bring its forward FLOPs per token within the
 * tolerance of `targetForwardFlopsPerToken`, everything else taken from `baseConfig`.
 *
 * The base ratio is baseConfig.ffnHidden / baseConfig.dModel when the base sets ffnHidden, else the
 * architecture's default (4 for the Transformer family, 3 for gMLP and sMLP). With `vary: 'both'`
 * every allowed dModel is tried; at each, FLOPs are affine in the hidden width, so the hidden width
 * that hits the target is solved for and rounded to what the architecture allows (sMLP: a multiple of
 * experts, since sMoE cuts the hidden width into equal expert chunks). Among the candidates within
 * tolerance, the one whose hidden / dModel ratio is closest to the base ratio wins (then the smallest
 * error). The FLOPs reported are those of the config as built.
 *
 * @throws Error naming the architecture, the target and the closest FLOPs reached, when no width
 *   within the search lands within the tolerance (for example a target below the cost of the LM head
 *   alone), or for invalid options.
 */
export function matchCompute(
  targetForwardFlopsPerToken: number,
  baseConfig: ModelConfig,
  options: ComputeMatchOptions = {},
): Record<Architecture, ComputeMatch> {
  if (!Number.isFinite(targetForwardFlopsPerToken) || targetForwardFlopsPerToken <= 0) {
    throw new Error(`matchCompute: targetForwardFlopsPerToken must be a finite number above 0, received ${targetForwardFlopsPerToken}.`);
  }
  const vary = options.vary ?? 'both';
  if (!['both', 'dModel', 'hidden'].includes(vary)) {
    throw new Error(`matchCompute: vary must be one of both, dModel, hidden, received "${String(vary)}".`);
  }
  const tolerance = options.tolerance ?? 0.05;
  if (!Number.isFinite(tolerance) || tolerance <= 0 || tolerance >= 1) {
    throw new Error(`matchCompute: tolerance must be a number in (0, 1), received ${tolerance}.`);
  }
  const dModelMultiple = options.dModelMultiple ?? 8;
  if (!Number.isInteger(dModelMultiple) || dModelMultiple < 1) {
    throw new Error(`matchCompute: dModelMultiple must be a positive integer, received ${dModelMultiple}.`);
  }
  const architectures = (options.architectures ?? ARCHITECTURES).map(checkArchitecture);

  const matches = {} as Record<Architecture, ComputeMatch>;
  for (const architecture of architectures) {
    matches[architecture] = matchOne(architecture, targetForwardFlopsPerToken, baseConfig, vary, tolerance, dModelMultiple);
  }
  return matches;
}

function matchOne(
  architecture: Architecture,
  target: number,
  base: ModelConfig,
  vary: 'both' | 'dModel' | 'hidden',
  tolerance: number,
  dModelMultiple: number,
): ComputeMatch {
  // The base dModel may not suit the base heads (only the matched one must), so the base is checked
  // at a dModel the search allows; resolving as gmlp first validates heads without the divisibility rule.
  // The sMoE expert count does not depend on the widths, so it is read from that gmlp resolution too;
  // the base is then checked at a hidden width of one chunk per sMoE expert, which sMLP always allows.
  const gmlpBase = resolveConfig('gmlp', base);
  const widthStep = TRANSFORMER_FAMILY.includes(architecture) ? lcm(dModelMultiple, gmlpBase.heads) : dModelMultiple;
  const hiddenStep = architecture === 'smlp' ? smlpSparseWidths(gmlpBase).smoeExperts : 1;
  const resolvedBase = resolveConfig(
    architecture,
    vary === 'hidden' ? base : { ...base, dModel: widthStep, ffnHidden: architecture === 'smlp' ? hiddenStep : undefined },
  );
  const ratio = base.ffnHidden !== undefined ? base.ffnHidden / base.dModel : defaultHidden(architecture, 1);

  const flopsOf = (dModel: number, ffnHidden: number): number =>
    accountModel(architecture, resolveConfig(architecture, { ...base, dModel, ffnHidden })).forwardFlopsPerToken;

  // Candidate (dModel, hidden) pairs.
  const candidates: Array<[number, number]> = [];
  const roundHidden = (hidden: number) => Math.max(hiddenStep, Math.round(hidden / hiddenStep) * hiddenStep);
  const solveHidden = (dModel: number): number | null => {
    // FLOPs are affine in the hidden width: solve a + b * hidden = target from two evaluations.
    const low = flopsOf(dModel, hiddenStep);
    const slope = (flopsOf(dModel, 2 * hiddenStep) - low) / hiddenStep;
    const hidden = hiddenStep + (target - low) / slope;
    return hidden >= hiddenStep / 2 ? roundHidden(hidden) : null;
  };

  if (vary === 'hidden') {
    const hidden = solveHidden(resolvedBase.dModel);
    if (hidden !== null) candidates.push([resolvedBase.dModel, hidden]);
  } else {
    // FLOPs grow with dModel, so the search stops at the first dModel past the target.
    for (let dModel = widthStep; ; dModel += widthStep) {
      if (vary === 'dModel') {
        const hidden = roundHidden(ratio * dModel);
        candidates.push([dModel, hidden]);
        if (flopsOf(dModel, hidden) > target * (1 + tolerance)) break;
      } else {
        if (flopsOf(dModel, hiddenStep) > target * (1 + tolerance)) break;
        const hidden = solveHidden(dModel);
        if (hidden !== null) candidates.push([dModel, hidden]);
      }
    }
  }

  let best: { dModel: number; hidden: number; flops: number; error: number } | null = null;
  let closest: number | null = null;
  for (const [dModel, hidden] of candidates) {
    const flops = flopsOf(dModel, hidden);
    const error = (flops - target) / target;
    if (closest === null || Math.abs(error) < Math.abs((closest - target) / target)) closest = flops;
    if (Math.abs(error) > tolerance) continue;
    const distance = Math.abs(Math.log(hidden / dModel / ratio));
    const bestDistance = best === null ? Infinity : Math.abs(Math.log(best.hidden / best.dModel / ratio));
    if (best === null || distance < bestDistance - 1e-12 || (Math.abs(distance - bestDistance) <= 1e-12 && Math.abs(error) < Math.abs(best.error))) {
      best = { dModel, hidden, flops, error };
    }
  }
  if (best === null) {
    throw new Error(
      `matchCompute: no ${architecture} width (vary = ${vary}) lands within ${tolerance * 100}% of ` +
        `${target} forward FLOPs per token; the closest reached ${closest ?? 'nothing'}. ` +
        `Raise the target, or change vary, seqLen, layers or vocabSize in the base config.`,
    );
  }

  const config: ModelConfig = { ...base, dModel: best.dModel, ffnHidden: best.hidden };
  return { architecture, config, accounting: accountModel(architecture, resolveConfig(architecture, config)), relativeError: best.error };
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

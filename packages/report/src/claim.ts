/**
 * The sMLP paper's training-efficiency claim and the rule that turns a measured speedup into a verdict.
 */
import type { SeedFigure } from './statistics.js';

/** The claim under test, paraphrased from the sMLP paper's abstract, with the scale the paper worked at. */
export const PAPER_CLAIM = {
  text: 'up to 2x training efficiency over GShard, Switch, BASE Layers, HASH Layers, a dense Transformer and gMLP',
  source: 'Yu et al., "Efficient Language Modeling with Sparse all-MLP", 2022, arXiv:2203.06850',
  /** The largest speedup the sMLP paper claims. */
  speedup: 2,
  /** Scale of the paper's models, for comparison with the scale measured here. */
  scale: 'models with billions of parameters trained on GPUs (its zero-shot results list a 9.4B-parameter sMLP)',
} as const;

/** Architectures the sMLP paper compared sMLP with; a speedup over any other model gets no verdict. */
export const PAPER_BASELINES: readonly string[] = ['gshard', 'switch', 'base', 'hash', 'transformer', 'gmlp'];

/**
 * Outcome of comparing one baseline's measured speedup with the claim. `not judged` means the paper
 * did not compare sMLP with the baseline's architecture, so its claim covers no such speedup.
 */
export type Verdict = 'reproduced' | 'not reproduced' | 'inconclusive' | 'not judged';

/**
 * Result of checking whether the measured speedup reaches the paper's 2x with the margins of the
 * verdict rule. `undecided`: the interval contains 2, or one seed lies within the margin around 2.
 * `n/a`: no speedup to judge, or no verdict.
 */
export type PaperSpeedupCheck = 'yes' | 'no' | 'undecided' | 'n/a';

/** A verdict with the one-line reason the report prints next to it. */
export interface ClaimVerdict {
  verdict: Verdict;
  reason: string;
  /** Whether the speedup reaches the claimed 2x, with the verdict rule's margins; see `PaperSpeedupCheck`. */
  reachesPaperSpeedup: PaperSpeedupCheck;
}

/** Inputs of the verdict: the time speedups of sMLP over one baseline, per paired seed. */
export interface VerdictInput {
  /** Speedups over the seeds where sMLP reached the baseline's final perplexity; null when none did. */
  speedup: SeedFigure | null;
  /** Seeds with both models evaluated. */
  pairedSeeds: number;
  /** Paired seeds where sMLP reached the baseline's final perplexity. */
  reachedSeeds: number;
  /**
   * Reached seeds without a measured ratio: a crossing lies before a first evaluation made after the
   * start, so only a bound on it is known. Default: 0.
   */
  unmeasuredSeeds?: number;
  /**
   * Paired runs that have not finished their budget (interrupted, failed, stopped without finishing or
   * still training), described (`GShard (seed 1) is interrupted`). Default: none.
   */
  unfinished?: string[];
  /** Paired sMLP runs that diverged, described (`seed 1: loss not finite at step 11`). Default: none. */
  subjectDiverged?: string[];
}

/** Describes the verdict rule in words, for the paragraph under the claim table. */
export function describeVerdictRule(singleSeedMargin: number): string {
  const low = (1 + singleSeedMargin).toFixed(2);
  const high = (1 / (1 + singleSeedMargin)).toFixed(2);
  const paperLow = (PAPER_CLAIM.speedup * (1 + singleSeedMargin)).toFixed(2);
  const paperHigh = (PAPER_CLAIM.speedup / (1 + singleSeedMargin)).toFixed(2);
  return [
    'The claim is read per baseline as "sMLP reaches the baseline\'s final validation perplexity in less training time".',
    'The speedup is the baseline\'s training time to its own final perplexity divided by sMLP\'s time to the same perplexity, per seed.',
    'Over several seeds the speedup is the geometric mean, with the 95% t interval computed on the log speedups.',
    'With two or more seeds: reproduced when the 95% interval of the speedup lies above 1, not reproduced when it lies below 1,',
    'inconclusive when it contains 1 or when sMLP reached the target in only some seeds.',
    `With one seed: reproduced at a speedup of ${low} or more, not reproduced at ${high} or less, inconclusive in between.`,
    'In every case: inconclusive when either model has no evaluation or either run has not finished its budget (interrupted, failed, or still marked running);',
    'not reproduced when sMLP never reaches the target (also when it diverged first);',
    'inconclusive when a model had reached the target by its first evaluation, since the time to it is then unknown.',
    `"Reaches ${PAPER_CLAIM.speedup}x" uses the same margins around ${PAPER_CLAIM.speedup}:`,
    `yes when the interval lies at or above ${PAPER_CLAIM.speedup}, no when it lies below, with one seed yes at ${paperLow}x or more and no at ${paperHigh}x or less,`,
    'undecided in between; no when sMLP never reached the target.',
  ].join(' ');
}

/**
 * Judges whether the speedup reaches the paper's 2x with the verdict rule's margins. Several seeds
 * are judged on the interval: yes when its lower end is at least 2, no when its upper end is below 2.
 * One seed is judged on the relative margin: yes at 2 x (1 + margin) or more, no at 2 / (1 + margin) or less.
 */
export function checkPaperSpeedup(speedup: SeedFigure | null, singleSeedMargin = 0.1): PaperSpeedupCheck {
  if (speedup === null) return 'n/a';
  const target = PAPER_CLAIM.speedup;
  if (speedup.low === null || speedup.high === null) {
    if (speedup.mean >= target * (1 + singleSeedMargin)) return 'yes';
    if (speedup.mean <= target / (1 + singleSeedMargin)) return 'no';
    return 'undecided';
  }
  if (speedup.low >= target) return 'yes';
  if (speedup.high < target) return 'no';
  return 'undecided';
}

/**
 * Judges the claim for one baseline with the rule of `describeVerdictRule`.
 *
 * @param singleSeedMargin relative margin around 1 a single-seed speedup must clear, because one seed
 *   has no measured spread (default 0.1, so 1.1 or more reproduces and 1/1.1 or less does not).
 * @param subject name of the measured model in the reason (default `sMLP`).
 */
export function judgeClaim(input: VerdictInput, singleSeedMargin = 0.1, subject = 'sMLP'): ClaimVerdict {
  if (!(singleSeedMargin >= 0)) {
    throw new Error(`judgeClaim: singleSeedMargin is ${singleSeedMargin}; it must be a number >= 0.`);
  }
  const { speedup, pairedSeeds, reachedSeeds } = input;
  const unmeasuredSeeds = input.unmeasuredSeeds ?? 0;
  const unfinished = input.unfinished ?? [];
  const subjectDiverged = input.subjectDiverged ?? [];
  const measured = checkPaperSpeedup(speedup, singleSeedMargin);

  if (pairedSeeds === 0) {
    return { verdict: 'inconclusive', reason: `${subject} or the baseline has no evaluation to compare.`, reachesPaperSpeedup: 'n/a' };
  }
  if (unfinished.length > 0) {
    const partial = unfinished.length === 1 ? 'its figures do not cover its whole budget' : 'their figures do not cover their whole budgets';
    return { verdict: 'inconclusive', reason: `${unfinished.join(', ')}: ${partial}.`, reachesPaperSpeedup: 'n/a' };
  }
  if (reachedSeeds === 0) {
    const reason =
      subjectDiverged.length > 0
        ? `${subject} diverged (${subjectDiverged.join('; ')}) before it reached the baseline's final perplexity.`
        : `${subject} never reached the baseline's final perplexity within its budget.`;
    return { verdict: 'not reproduced', reason, reachesPaperSpeedup: 'no' };
  }
  if (unmeasuredSeeds > 0 || speedup === null) {
    return {
      verdict: 'inconclusive',
      reason:
        `The time to the baseline's final perplexity is unknown in ${Math.max(unmeasuredSeeds, 1)} of ${pairedSeeds} seeds: ` +
        'a model had reached it by its first evaluation.',
      reachesPaperSpeedup: 'n/a',
    };
  }
  if (reachedSeeds < pairedSeeds) {
    return {
      verdict: 'inconclusive',
      reason: `${subject} reached the baseline's final perplexity in ${reachedSeeds} of ${pairedSeeds} seeds.`,
      reachesPaperSpeedup: 'n/a',
    };
  }

  if (speedup.n === 1) {
    const value = speedup.mean.toFixed(2);
    if (speedup.mean >= 1 + singleSeedMargin) {
      return { verdict: 'reproduced', reason: `${subject} was ${value}x faster (one seed).`, reachesPaperSpeedup: measured };
    }
    if (speedup.mean <= 1 / (1 + singleSeedMargin)) {
      return { verdict: 'not reproduced', reason: `${subject} was slower: ${value}x (one seed).`, reachesPaperSpeedup: measured };
    }
    return {
      verdict: 'inconclusive',
      reason: `${value}x is within the single-seed margin of ${singleSeedMargin} around 1.`,
      reachesPaperSpeedup: measured,
    };
  }

  const interval = `95% interval [${speedup.low!.toFixed(2)}, ${speedup.high!.toFixed(2)}] over ${speedup.n} seeds`;
  if (speedup.low! > 1) return { verdict: 'reproduced', reason: `${subject} was faster: ${interval}.`, reachesPaperSpeedup: measured };
  if (speedup.high! < 1) return { verdict: 'not reproduced', reason: `${subject} was slower: ${interval}.`, reachesPaperSpeedup: measured };
  return { verdict: 'inconclusive', reason: `The ${interval} contains 1.`, reachesPaperSpeedup: measured };
}

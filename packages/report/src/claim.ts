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

/** Outcome of comparing one baseline's measured speedup with the claim. */
export type Verdict = 'reproduced' | 'not reproduced' | 'inconclusive';

/** A verdict with the one-line reason the report prints next to it. */
export interface ClaimVerdict {
  verdict: Verdict;
  reason: string;
  /** Whether the measured mean speedup reaches the claimed 2x; null when there is no speedup. */
  reachesPaperSpeedup: boolean | null;
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
  /** Paired runs that stopped before the end of their budget, described (`GShard (seed 1) is interrupted`). Default: none. */
  unfinished?: string[];
  /** Paired sMLP runs that diverged, described (`seed 1: loss not finite at step 11`). Default: none. */
  subjectDiverged?: string[];
}

/** Describes the verdict rule in words, for the paragraph under the claim table. */
export function describeVerdictRule(singleSeedMargin: number): string {
  const low = (1 + singleSeedMargin).toFixed(2);
  const high = (1 / (1 + singleSeedMargin)).toFixed(2);
  return [
    'The claim is read per baseline as "sMLP reaches the baseline\'s final validation perplexity in less training time".',
    'The speedup is the baseline\'s training time to its own final perplexity divided by sMLP\'s time to the same perplexity, per seed.',
    'With two or more seeds: reproduced when the 95% interval of the speedup lies above 1, not reproduced when it lies below 1,',
    'inconclusive when it contains 1 or when sMLP reached the target in only some seeds.',
    `With one seed: reproduced at a speedup of ${low} or more, not reproduced at ${high} or less, inconclusive in between.`,
    'In every case: inconclusive when either model has no evaluation or either run was interrupted or failed before the end of its budget;',
    'not reproduced when sMLP never reaches the target (also when it diverged first);',
    'inconclusive when a model had reached the target by its first evaluation, since the time to it is then unknown.',
    'Whether the mean speedup reaches the paper\'s 2x is shown separately.',
  ].join(' ');
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
  const reachesPaperSpeedup = speedup === null ? null : speedup.mean >= PAPER_CLAIM.speedup;

  if (pairedSeeds === 0) {
    return { verdict: 'inconclusive', reason: `${subject} or the baseline has no evaluation to compare.`, reachesPaperSpeedup };
  }
  if (unfinished.length > 0) {
    const stoppedEarly = unfinished.length === 1 ? 'it stopped before the end of its budget' : 'they stopped before the end of their budgets';
    return { verdict: 'inconclusive', reason: `${unfinished.join(', ')}: ${stoppedEarly}.`, reachesPaperSpeedup };
  }
  if (reachedSeeds === 0) {
    const reason =
      subjectDiverged.length > 0
        ? `${subject} diverged (${subjectDiverged.join('; ')}) before it reached the baseline's final perplexity.`
        : `${subject} never reached the baseline's final perplexity within its budget.`;
    return { verdict: 'not reproduced', reason, reachesPaperSpeedup };
  }
  if (unmeasuredSeeds > 0 || speedup === null) {
    return {
      verdict: 'inconclusive',
      reason:
        `The time to the baseline's final perplexity is unknown in ${Math.max(unmeasuredSeeds, 1)} of ${pairedSeeds} seeds: ` +
        'a model had reached it by its first evaluation.',
      reachesPaperSpeedup,
    };
  }
  if (reachedSeeds < pairedSeeds) {
    return {
      verdict: 'inconclusive',
      reason: `${subject} reached the baseline's final perplexity in ${reachedSeeds} of ${pairedSeeds} seeds.`,
      reachesPaperSpeedup,
    };
  }

  if (speedup.n === 1) {
    const value = speedup.mean.toFixed(2);
    if (speedup.mean >= 1 + singleSeedMargin) {
      return { verdict: 'reproduced', reason: `${subject} was ${value}x faster (one seed).`, reachesPaperSpeedup };
    }
    if (speedup.mean <= 1 / (1 + singleSeedMargin)) {
      return { verdict: 'not reproduced', reason: `${subject} was slower: ${value}x (one seed).`, reachesPaperSpeedup };
    }
    return {
      verdict: 'inconclusive',
      reason: `${value}x is within the single-seed margin of ${singleSeedMargin} around 1.`,
      reachesPaperSpeedup,
    };
  }

  const interval = `95% interval [${speedup.low!.toFixed(2)}, ${speedup.high!.toFixed(2)}] over ${speedup.n} seeds`;
  if (speedup.low! > 1) return { verdict: 'reproduced', reason: `${subject} was faster: ${interval}.`, reachesPaperSpeedup };
  if (speedup.high! < 1) return { verdict: 'not reproduced', reason: `${subject} was slower: ${interval}.`, reachesPaperSpeedup };
  return { verdict: 'inconclusive', reason: `The ${interval} contains 1.`, reachesPaperSpeedup };
}

import { describe, expect, it } from 'vitest';
import { analyse, buildDocument, formatCount, renderMarkdown, type AnalysisOptions, type ModelRun, type ReportData } from '../src/index.js';
import { modelRun, testRun } from './fixtures.js';

const run = testRun;

function markdownOf(data: ReportData, options: AnalysisOptions = {}): string {
  return renderMarkdown(buildDocument(analyse(data, options), data.run, []), 'charts');
}

function rowOf(markdown: string, start: string): string | undefined {
  return markdown.split('\n').find((line) => line.startsWith(start));
}

// Every baseline ends at perplexity 20 after 30 s; sMLP reaches 20 at 15 s, a 2x speedup.
const smlp = modelRun('smlp', [[0, 100], [15, 20]]);
const baseline = (name: string, architecture = name): ModelRun => modelRun(name, [[0, 100], [30, 20]], { architecture });

describe('models the paper did not compare', () => {
  const data: ReportData = { run, models: [smlp, baseline('transformer'), baseline('greedy'), baseline('smlp-e8', 'smlp')] };
  const analysis = analyse(data);
  const byName = (name: string) => analysis.comparisons.find((comparison) => comparison.baseline === name)!;

  it('measures their speedup without a verdict', () => {
    for (const name of ['greedy', 'smlp-e8']) {
      const comparison = byName(name);
      expect(comparison.paperBaseline, name).toBe(false);
      expect(comparison.speedups.time.speedup!.mean, name).toBe(2);
      expect(comparison.claim.verdict, name).toBe('not judged');
      expect(comparison.claim.reachesPaperSpeedup, name).toBe('n/a');
    }
    expect(byName('greedy').claim.reason).toBe('The sMLP paper did not compare sMLP with greedy: the speedup is measured, not judged against its claim.');
  });

  it('still judges the paper baselines', () => {
    expect(byName('transformer').paperBaseline).toBe(true);
    expect(byName('transformer').claim.verdict).toBe('reproduced');
  });

  it("lists them apart from the claim table, without the paper's 2x", () => {
    const markdown = markdownOf(data);
    expect(rowOf(markdown, '| Transformer | up to 2x | 2.00x |')).toBeDefined();
    expect(markdown).not.toContain('| greedy | up to 2x');
    expect(markdown).not.toContain('| smlp-e8 | up to 2x');
    expect(markdown).toContain('## Models the paper did not compare');
    const greedy = rowOf(markdown, '| greedy | greedy | 2.00x | 2.00x | 2.00x |')!;
    expect(greedy).toBeDefined();
    expect(greedy).not.toMatch(/reproduced|inconclusive|not judged/);
    expect(rowOf(markdown, '| smlp-e8 | smlp | 2.00x |')).toBeDefined();
  });

  it('judges nothing when the subject is not an sMLP', () => {
    const other = analyse(data, { subject: 'greedy' });
    expect(other.comparisons.map((comparison) => comparison.claim.verdict)).toEqual(['not judged', 'not judged', 'not judged']);
    expect(markdownOf(data, { subject: 'greedy' })).toContain('None of the comparisons below is one the paper made, so no verdict on its claim is given.');
  });
});

describe('a model scored on fewer positions', () => {
  const unscoredPositions = { skipped: 12, seqLen: 64, cause: 'partial-prediction routing' };
  const scoring =
    'sMLP is scored on positions 13 to 64 of each 64-position validation sequence: its partial-prediction routing leaves ' +
    'the first 12 out of the loss, while the other models are scored on all 64. Later positions have more context and are ' +
    "easier to predict, so sMLP's perplexities read lower than on all positions, and its speedups at the other models' " +
    'perplexities are biased in its favour. The run store has no perplexity of the other models on the same positions.';

  it('says so next to the speedups and the final perplexity', () => {
    const data: ReportData = { run, models: [{ ...smlp, unscoredPositions }, baseline('transformer')] };
    const markdown = markdownOf(data);
    expect(markdown).toContain(`Scoring. ${scoring}`);
    expect(rowOf(markdown, '| sMLP |')).toContain('| 20.00 (positions 13 to 64 only) |');
    expect(analyse(data).notes).toContain(
      'sMLP is scored on positions 13 to 64 only, the other models on all 64: this favours it (see Scoring under the claim table).',
    );
  });

  it('gives the whole statement in the notes for a model that is not the subject', () => {
    const variant: ModelRun = { ...baseline('smlp-pp', 'smlp'), unscoredPositions };
    const analysis = analyse({ run, models: [smlp, baseline('transformer'), variant] });
    expect(analysis.notes).toContain(scoring.replaceAll('sMLP', 'smlp-pp'));
  });

  it('adds nothing for models scored on every position', () => {
    const markdown = markdownOf({ run, models: [smlp, baseline('transformer')] });
    expect(markdown).not.toContain('Scoring.');
    expect(markdown).not.toContain('only)');
  });
});

describe('report wording', () => {
  it("gives the baseline's whole run as its scale, not where it reached the target", () => {
    // The transformer reaches its final perplexity 20 at 20 s but trains on to 30 s (30k tokens).
    const transformer = modelRun('transformer', [[0, 100], [20, 20], [30, 20]]);
    const analysis = analyse({ run, models: [smlp, transformer] });
    expect(analysis.comparisons[0].speedups.time.baseline!.mean).toBe(20);
    expect(analysis.comparisons[0].scale).toBe(
      'sMLP 1M params, 1k FLOPs/token; Transformer 1M params, 1k FLOPs/token; Transformer run: 30k tokens in 30 s of training',
    );
    const markdown = markdownOf({ run, models: [smlp, transformer] });
    expect(markdown).toContain('| Scale |');
    expect(markdown).not.toContain('Measured at');
    expect(markdown).toContain("not the moment it reached its target (that is in the time-to-target table)");
  });

  it('formats counts without exponents at unit boundaries', () => {
    expect(formatCount(9.61e9)).toBe('9.61G');
    expect(formatCount(999_600)).toBe('1M');
    expect(formatCount(999_499)).toBe('999k');
    expect(formatCount(999.7)).toBe('1k');
    expect(formatCount(505_000)).toBe('505k');
  });

  it('marks the final perplexity of a diverged run as its last finite value', () => {
    const diverged = modelRun('transformer', [[0, 255.43]], { status: 'diverged', statusReason: 'loss not finite at step 4' });
    const markdown = markdownOf({ run, models: [smlp, diverged] });
    expect(rowOf(markdown, '| Transformer | 1M |')).toContain('| 255.43 (diverged: last finite value, at step 0) |');
  });

  it('reads no equal time at 0 s when no run trained past it', () => {
    const models = ['transformer', 'smlp'].map((name) => modelRun(name, [[0, 255]], { status: 'diverged' }));
    const analysis = analyse({ run, models });
    expect(analysis.equalTimeSeconds).toBeNull();
    expect(analysis.equalTimeBasis).toBeNull();
    const markdown = markdownOf({ run, models });
    expect(markdown).toContain('Perplexity at equal training time is n/a: no run was evaluated after training started.');
    expect(markdown).not.toContain('read at 0.0 s');
    expect(markdown).toContain('| Perplexity at equal time |');
  });

  it('reads equal time at the shortest unfinished run when none finished', () => {
    const models = [
      modelRun('smlp', [[0, 250], [5, 120]], { status: 'diverged' }),
      modelRun('transformer', [[0, 250], [8, 100]], { status: 'interrupted' }),
      modelRun('gmlp', [[0, 250]], { status: 'diverged' }),
    ];
    const analysis = analyse({ run, models });
    expect(analysis.equalTimeSeconds).toBe(5);
    expect(analysis.equalTimeBasis).toBe('unfinished');
    expect(markdownOf({ run, models })).toContain('No run finished, so perplexity at equal training time is read at 5.0 s');
  });

  it('shows an undecided 2x check with its margin', () => {
    // One seed at 30 / 14.98 = 2.003x: reproduced, but within 10% of 2x.
    const near = modelRun('smlp', [[0, 100], [14.98, 20]]);
    const markdown = markdownOf({ run, models: [near, baseline('gshard')] });
    expect(rowOf(markdown, '| GShard | up to 2x | 2.00x |')).toContain('| undecided (within the one-seed margin) | **reproduced** |');
  });

  it('shows an interval that contains 2x as undecided', () => {
    // sMLP reaches 20 at 20, 10 and 15 s against 30 s: speedups 1.5, 3 and 2.
    const seeds = [1, 2, 3];
    const ends = [20, 10, 15];
    const models = [
      ...seeds.map((seed, index) => modelRun('smlp', [[0, 100], [ends[index], 20]], { seed })),
      ...seeds.map((seed) => modelRun('gshard', [[0, 100], [30, 20]], { seed })),
    ];
    const markdown = markdownOf({ run, models });
    expect(rowOf(markdown, '| GShard | up to 2x |')).toContain('| undecided (interval contains 2x) |');
  });
});

describe('baselines that reach their target at the start', () => {
  it('takes no target from a baseline that diverged before training', () => {
    // GShard's only finite evaluation is the one at 0 s, so its perplexity 255.43 is that of an untrained model.
    const gshard = modelRun('gshard', [[0, 255.43]], { status: 'diverged', statusReason: 'loss not finite at step 4' });
    const analysis = analyse({ run, models: [modelRun('smlp', [[0, 257], [10, 100]]), gshard] });
    const [comparison] = analysis.comparisons;
    expect(comparison.pairedSeeds).toEqual([]);
    expect(comparison.target).toBeNull();
    expect(comparison.speedups.time.speedup).toBeNull();
    expect(comparison.claim).toEqual({
      verdict: 'inconclusive',
      reason: 'GShard (seed 1) diverged before its first evaluation after the start: its figures do not cover its whole budget.',
      reachesPaperSpeedup: 'n/a',
    });
  });

  it('measures no speedup from a baseline crossing at 0 s', () => {
    // Switch ends at 30 but was already at 20 at 0 s, so it crossed 30 at 0 s. sMLP crosses 30 at
    // 10 x (100 - 30) / (100 - 20) = 8.75 s, and 0 / 8.75 would read as a 0x speedup.
    const analysis = analyse({ run, models: [modelRun('smlp', [[0, 100], [10, 20]]), modelRun('switch', [[0, 20], [10, 30]])] });
    const time = analysis.comparisons[0].speedups.time;
    expect(time.baseline!.mean).toBe(0);
    expect(time.subject!.mean).toBeCloseTo(8.75, 10);
    expect(time.speedup).toBeNull();
    expect(time.unmeasuredSeeds).toEqual([1]);
    expect(analysis.comparisons[0].claim.verdict).toBe('inconclusive');
  });
});

import { describe, expect, it } from 'vitest';
import { analyse, judgeClaim, routingHealth, type ReportData } from '../src/index.js';
import { modelRun, routing, testRun } from './fixtures.js';

const run = testRun;

describe('analyse with one seed', () => {
  // transformer ends at perplexity 30 after 30 s; sMLP crosses 30 between 10 s (40) and 20 s (25):
  // 10 + (40 - 30) / (40 - 25) * 10 = 16.667 s, so the time speedup is 30 / 16.667 = 1.8.
  const data: ReportData = {
    run,
    models: [
      modelRun('smlp', [[10, 40], [20, 25]], { forwardFlopsPerToken: 2000 }),
      modelRun('transformer', [[10, 50], [20, 40], [30, 30]]),
      modelRun('gmlp', [[10, 30], [20, 20]]),
      modelRun('switch', [[10, 40], [20, 25]], { forwardFlopsPerToken: 2000 }),
    ],
  };
  const analysis = analyse(data);
  const byName = (name: string) => analysis.comparisons.find((comparison) => comparison.baseline === name)!;

  it('picks the smlp architecture as the subject', () => {
    expect(analysis.subject).toBe('smlp');
    expect(analysis.comparisons.map((comparison) => comparison.baseline)).toEqual(['transformer', 'gmlp', 'switch']);
  });

  it('measures the time speedup at the baseline final perplexity', () => {
    const time = byName('transformer').speedups.time;
    expect(byName('transformer').target!.mean).toBe(30);
    expect(time.baseline!.mean).toBe(30);
    expect(time.subject!.mean).toBeCloseTo(50 / 3, 10);
    expect(time.speedup!.mean).toBeCloseTo(1.8, 10);
    expect(time.speedup!.low).toBeNull();
  });

  it('measures tokens and FLOPs speedups on their own axes', () => {
    const { tokens, flops } = byName('transformer').speedups;
    expect(tokens.speedup!.mean).toBeCloseTo(1.8, 10);
    // sMLP spends twice the FLOPs per token: 3 * 1000 * 30000 / (3 * 2000 * 16667)
    expect(flops.baseline!.mean).toBe(3 * 1000 * 30_000);
    expect(flops.speedup!.mean).toBeCloseTo(0.9, 10);
  });

  it('reports not reached and judges the claim not reproduced', () => {
    const gmlp = byName('gmlp');
    expect(gmlp.speedups.time.speedup).toBeNull();
    expect(gmlp.speedups.time.reachedSeeds).toBe(0);
    expect(gmlp.claim.verdict).toBe('not reproduced');
  });

  it('gives a tie a speedup of exactly 1 and an inconclusive verdict', () => {
    const tie = byName('switch');
    expect(tie.speedups.time.speedup!.mean).toBe(1);
    expect(tie.claim.verdict).toBe('inconclusive');
  });

  it('judges a 1.8x single-seed speedup reproduced but short of 2x', () => {
    const claim = byName('transformer').claim;
    expect(claim.verdict).toBe('reproduced');
    // 1.8 <= 2 / 1.1 = 1.818, so one seed clears the margin below 2x.
    expect(claim.reachesPaperSpeedup).toBe('no');
    expect(claim.reason).toBe('sMLP was 1.80x faster (one seed).');
  });

  it('compares perplexity at the shortest run end', () => {
    expect(analysis.equalTimeSeconds).toBe(20);
    const atEqual = Object.fromEntries(analysis.models.map((model) => [model.name, model.perplexityAtEqualTime!.mean]));
    expect(atEqual).toEqual({ smlp: 25, transformer: 40, gmlp: 20, switch: 25 });
  });

  it('computes throughput from the last evaluation without steps', () => {
    expect(analysis.models[1].tokensPerSecond!.mean).toBe(1000);
    expect(analysis.models[1].trainingTokens!.mean).toBe(30_000);
  });

  it('says there is only one seed', () => {
    expect(analysis.seedCount).toBe(1);
    expect(analysis.notes[0]).toMatch(/^One seed per model/);
  });
});

describe('analyse with several seeds', () => {
  // The baseline ends at perplexity 10 after 30 s in every seed. sMLP reaches 10 at 20, 15 and 12 s:
  // speedups 1.5, 2 and 2.5. On the log scale: mean of ln 1.5, ln 2, ln 2.5 = 0.671634, sample sd
  // 0.256091, half-width t(0.975, 2) * 0.256091 / sqrt(3) = 0.636166, so the geometric mean is
  // exp(0.671634) = 7.5^(1/3) = 1.957434 and the interval [exp(0.035468), exp(1.307800)] = [1.036105, 3.698031].
  const seeds = [1, 2, 3];
  const subjectEnds = [20, 15, 12];
  const data: ReportData = {
    run,
    models: [
      ...seeds.map((seed, index) => modelRun('smlp', [[0, 100], [subjectEnds[index], 10]], { seed })),
      ...seeds.map((seed) => modelRun('gshard', [[0, 100], [30, 10]], { seed })),
    ],
  };
  const analysis = analyse(data);

  it('pairs seeds and gives the geometric mean and log-scale t interval of the speedup', () => {
    const { speedup } = analysis.comparisons[0].speedups.time;
    expect(analysis.comparisons[0].pairedSeeds).toEqual([1, 2, 3]);
    expect(speedup!.values).toEqual([1.5, 2, 2.5]);
    expect(speedup!.scale).toBe('log');
    expect(speedup!.mean).toBeCloseTo(Math.cbrt(7.5), 12);
    expect(speedup!.low).toBeCloseTo(1.036105, 5);
    expect(speedup!.high).toBeCloseTo(3.698031, 5);
  });

  it('calls a log interval above 1 reproduced and one containing 2x undecided', () => {
    expect(analysis.comparisons[0].claim.verdict).toBe('reproduced');
    expect(analysis.comparisons[0].claim.reachesPaperSpeedup).toBe('undecided');
  });

  it('gives every model figure an interval', () => {
    const smlp = analysis.models[0];
    expect(smlp.seeds).toEqual([1, 2, 3]);
    expect(smlp.finalPerplexity!.mean).toBe(10);
    expect(smlp.trainingSeconds!.values).toEqual([20, 15, 12]);
    expect(smlp.trainingSeconds!.low).not.toBeNull();
    expect(analysis.notes).toEqual([]);
  });

  it('notes baseline seeds without an sMLP partner', () => {
    const extra = analyse({ ...data, models: [...data.models, modelRun('gshard', [[0, 100], [30, 10]], { seed: 9 })] });
    expect(extra.comparisons[0].pairedSeeds).toEqual([1, 2, 3]);
    expect(extra.notes).toContain('GShard seeds 9 have no sMLP run of the same seed and are not compared.');
  });
});

describe('analyse with early stops and late evaluations', () => {
  it('leaves a bounded crossing unmeasured', () => {
    // One evaluation each: sMLP at 100 after 5 s, Switch at 120 after 6 s. Both only bound their
    // crossing of 120 from above (at or before 5 s and 6 s), so 6 / 5 = 1.2 is no speedup.
    const analysis = analyse({ run, models: [modelRun('smlp', [[5, 100]]), modelRun('switch', [[6, 120]])] });
    const [comparison] = analysis.comparisons;
    expect(comparison.speedups.time.speedup).toBeNull();
    expect(comparison.speedups.time.reachedSeeds).toBe(1);
    expect(comparison.speedups.time.unmeasuredSeeds).toEqual([1]);
    expect(comparison.claim.verdict).toBe('inconclusive');
    expect(comparison.claim.reason).toBe(
      "The time to the baseline's final perplexity is unknown in 1 of 1 seeds: a model had reached it by its first evaluation.",
    );
  });

  it('measures curves that start at zero', () => {
    const analysis = analyse({ run, models: [modelRun('smlp', [[0, 250], [5, 100]]), modelRun('switch', [[0, 250], [6, 120]])] });
    const time = analysis.comparisons[0].speedups.time;
    // sMLP crosses 120 at 5 * (250 - 120) / (250 - 100) = 4.333 s; Switch at 6 s.
    expect(time.unmeasuredSeeds).toEqual([]);
    expect(time.speedup!.mean).toBeCloseTo(6 / (5 * 130 / 150), 10);
  });

  it('calls an interrupted pair inconclusive', () => {
    const analysis = analyse({
      run,
      models: [modelRun('smlp', [[0, 100], [10, 20]]), modelRun('gshard', [[0, 100], [30, 20]], { status: 'interrupted' })],
    });
    expect(analysis.comparisons[0].speedups.time.speedup!.mean).toBe(3);
    expect(analysis.comparisons[0].claim).toMatchObject({
      verdict: 'inconclusive',
      reason: 'GShard (seed 1) is interrupted: its figures do not cover its whole budget.',
    });
  });

  it('names a diverged sMLP in the reason', () => {
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [5, 120]], { status: 'diverged', statusReason: 'loss not finite at step 11' }),
        modelRun('transformer', [[0, 250], [5, 100], [10, 50]]),
      ],
    });
    expect(analysis.comparisons[0].claim).toMatchObject({
      verdict: 'not reproduced',
      reason: "sMLP diverged (seed 1: loss not finite at step 11) before it reached the baseline's final perplexity.",
    });
  });

  it('reads equal time at the shortest finished run', () => {
    // The diverged sMLP stops at 5 s; the finished runs end at 10 s and 20 s.
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [5, 120]], { status: 'diverged' }),
        modelRun('transformer', [[0, 250], [10, 50]]),
        modelRun('gmlp', [[0, 250], [20, 40]]),
      ],
    });
    expect(analysis.equalTimeSeconds).toBe(10);
    const atEqual = Object.fromEntries(analysis.models.map((model) => [model.name, model.perplexityAtEqualTime?.mean ?? null]));
    expect(atEqual).toEqual({ smlp: null, transformer: 50, gmlp: 145 });
  });

  it('checks options without comparisons', () => {
    const models = [modelRun('gmlp', [[1, 9]])];
    expect(() => analyse({ run, models }, { singleSeedMargin: -1 })).toThrow('analyse: singleSeedMargin is -1; it must be a number >= 0.');
    expect(() => analyse({ run, models }, { collapseThreshold: 2 })).toThrow('analyse: collapseThreshold is 2; it must lie in (0, 1).');
  });
});

describe('analyse with failed runs', () => {
  // Steps 1..n at one step per second, as a run records them until it fails.
  const stepsUpTo = (last: number) => Array.from({ length: last }, (_, index) => ({ step: index + 1, tokens: (index + 1) * 1000, trainingSeconds: index + 1, loss: 3 }));

  it('never counts a failed sMLP as reaching the target', () => {
    // sMLP crosses the transformer's final perplexity 50 at 2.5 s before its failure at step 5.
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [5, 20]], { status: 'failed', statusReason: 'RuntimeError: Aborted(OOM).', steps: stepsUpTo(5) }),
        modelRun('transformer', [[0, 250], [10, 50]]),
      ],
    });
    const comparison = analysis.comparisons[0];
    expect(comparison.pairedSeeds).toEqual([]);
    expect(comparison.target).toBeNull();
    for (const axis of ['time', 'tokens', 'flops'] as const) {
      expect(comparison.speedups[axis].reachedSeeds, axis).toBe(0);
      expect(comparison.speedups[axis].subject, axis).toBeNull();
      expect(comparison.speedups[axis].speedup, axis).toBeNull();
    }
    expect(comparison.claim).toEqual({
      verdict: 'inconclusive',
      reason: 'sMLP (seed 1) failed: its figures do not cover its whole budget.',
      reachesPaperSpeedup: 'n/a',
    });
  });

  it('notes a failed run with its step and error', () => {
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [5, 20]], { status: 'failed', statusReason: 'RuntimeError: Aborted(OOM).', steps: stepsUpTo(5) }),
        modelRun('transformer', [[0, 250], [10, 50]]),
      ],
    });
    expect(analysis.notes).toContain(
      'sMLP (seed 1) failed after step 5: RuntimeError: Aborted(OOM). It stopped before the end of its budget, so no speedup is measured with it.',
    );
    const smlp = analysis.models.find((model) => model.name === 'smlp')!;
    expect(smlp.statuses).toEqual(['failed']);
    expect(smlp.finalPerplexity!.mean).toBe(20);
    expect(smlp.trainingSeconds!.mean).toBe(5);
  });

  it('takes no target from a failed baseline', () => {
    // The failed GShard stops at perplexity 120, which sMLP passes; the finished transformer still compares.
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [10, 20]]),
        modelRun('gshard', [[0, 250], [3, 120]], { status: 'failed', statusReason: 'kernel error', steps: stepsUpTo(3) }),
        modelRun('transformer', [[0, 250], [20, 20]]),
      ],
    });
    const [gshard, transformer] = analysis.comparisons;
    expect(gshard.baseline).toBe('gshard');
    expect(gshard.pairedSeeds).toEqual([]);
    expect(gshard.target).toBeNull();
    expect(gshard.speedups.time.baseline).toBeNull();
    expect(gshard.speedups.time.reachedSeeds).toBe(0);
    expect(gshard.claim.verdict).toBe('inconclusive');
    expect(gshard.claim.reason).toBe('GShard (seed 1) failed: its figures do not cover its whole budget.');
    expect(gshard.scale).not.toContain('target at');

    expect(transformer.pairedSeeds).toEqual([1]);
    expect(transformer.speedups.time.speedup!.mean).toBe(2);
    expect(transformer.claim.verdict).toBe('reproduced');
  });

  it('measures the seeds whose runs did not fail', () => {
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [10, 20]], { seed: 1 }),
        modelRun('smlp', [[0, 250], [2, 20]], { seed: 2, status: 'failed', statusReason: 'out of memory', steps: stepsUpTo(2) }),
        modelRun('transformer', [[0, 250], [20, 20]], { seed: 1 }),
        modelRun('transformer', [[0, 250], [20, 20]], { seed: 2 }),
      ],
    });
    const comparison = analysis.comparisons[0];
    expect(comparison.pairedSeeds).toEqual([1]);
    expect(comparison.target!.values).toEqual([20]);
    expect(comparison.speedups.time.speedup!.values).toEqual([2]);
    expect(comparison.speedups.time.reachedSeeds).toBe(1);
    expect(comparison.claim.verdict).toBe('inconclusive');
    expect(comparison.claim.reason).toBe('sMLP (seed 2) failed: its figures do not cover its whole budget.');
  });

  it('notes a run that failed before any step', () => {
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [10, 20]]),
        modelRun('switch', [], { status: 'failed', statusReason: 'Error: kernel Softmax failed' }),
      ],
    });
    expect(analysis.notes).toContain(
      'Switch (seed 1) failed before its first recorded step: Error: kernel Softmax failed. It stopped before the end of its budget, so no speedup is measured with it.',
    );
    expect(analysis.notes).toContain('Switch (seed 1) has no evaluation and is left out of the comparisons.');
    expect(analysis.comparisons[0].claim.reason).toBe('sMLP or the baseline has no evaluation to compare.');
  });

  it('reads equal time without the failed run', () => {
    const analysis = analyse({
      run,
      models: [
        modelRun('smlp', [[0, 250], [5, 120]], { status: 'failed', statusReason: 'oom', steps: stepsUpTo(5) }),
        modelRun('transformer', [[0, 250], [10, 50]]),
        modelRun('gmlp', [[0, 250], [20, 40]]),
      ],
    });
    expect(analysis.equalTimeSeconds).toBe(10);
  });
});

describe('judgeClaim', () => {
  const figure = (values: number[], low: number | null, high: number | null) => ({
    mean: values.reduce((a, b) => a + b) / values.length,
    low,
    high,
    n: values.length,
    values,
  });

  it('reproduces when the interval lies above 1', () => {
    expect(judgeClaim({ speedup: figure([1.9, 2.1], 1.2, 2.8), pairedSeeds: 2, reachedSeeds: 2 }).verdict).toBe('reproduced');
  });

  it('rejects when the interval lies below 1', () => {
    expect(judgeClaim({ speedup: figure([0.5, 0.6], 0.2, 0.9), pairedSeeds: 2, reachedSeeds: 2 }).verdict).toBe('not reproduced');
  });

  it('is inconclusive when sMLP reached the target in only some seeds', () => {
    const verdict = judgeClaim({ speedup: figure([3], null, null), pairedSeeds: 2, reachedSeeds: 1 });
    expect(verdict.verdict).toBe('inconclusive');
    expect(verdict.reason).toBe("sMLP reached the baseline's final perplexity in 1 of 2 seeds.");
  });

  it('applies the single-seed margin on both sides', () => {
    expect(judgeClaim({ speedup: figure([1.1], null, null), pairedSeeds: 1, reachedSeeds: 1 }).verdict).toBe('reproduced');
    expect(judgeClaim({ speedup: figure([1.05], null, null), pairedSeeds: 1, reachedSeeds: 1 }).verdict).toBe('inconclusive');
    expect(judgeClaim({ speedup: figure([0.9], null, null), pairedSeeds: 1, reachedSeeds: 1 }).verdict).toBe('not reproduced');
  });

  it('is inconclusive without evaluations', () => {
    expect(judgeClaim({ speedup: null, pairedSeeds: 0, reachedSeeds: 0 }).verdict).toBe('inconclusive');
  });
});

describe('routingHealth', () => {
  it('warns of router collapse when one expert takes most tokens', () => {
    const health = routingHealth(
      modelRun('switch', [[1, 9]], { routing: [...routing('block0.moe', 8, [25, 25, 25, 25]), ...routing('block1.moe', 8, [70, 30, 0, 0], 0.2)] }),
    )!;
    expect(health.numExperts).toBe(4);
    expect(health.routedSteps).toBe(8);
    expect(health.layers[0].finalLoadShare).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(health.layers[1].maxTokenShare).toBeCloseTo(0.7, 12);
    expect(health.layers[1].idleThroughout).toEqual([2, 3]);
    expect(health.layers[1].meanIdleExperts).toBe(2);
    expect(health.layers[1].meanDroppedFraction).toBeCloseTo(0.2, 12);
    expect(health.collapseWarnings).toEqual([
      'Switch (seed 1) block1.moe: expert 0 took 70.0% of the tokens over the last quarter of training (router collapse).',
    ]);
  });

  it('counts top-2 choices as token shares', () => {
    // 40% of the choices with k = 2 means 80% of the tokens chose expert 0.
    const health = routingHealth(modelRun('gshard', [[1, 9]], { choicesPerToken: 2, routing: routing('l', 4, [40, 20, 20, 20]) }))!;
    expect(health.layers[0].maxTokenShare).toBeCloseTo(0.8, 12);
    expect(health.collapseWarnings).toHaveLength(1);
  });

  it('uses only the last quarter of the steps', () => {
    const early = routing('l', 6, [100, 0]);
    const late = routing('l', 2, [50, 50]).map((point) => ({ ...point, step: point.step + 6 }));
    const health = routingHealth(modelRun('switch', [[1, 9]], { routing: [...early, ...late] }))!;
    expect(health.layers[0].finalLoadShare).toEqual([0.5, 0.5]);
    expect(health.collapseWarnings).toEqual([]);
  });

  it('calls a busy HASH expert load imbalance', () => {
    const health = routingHealth(modelRun('hash', [[1, 9]], { routing: routing('l', 4, [60, 20, 10, 10]) }))!;
    expect(health.collapseWarnings).toEqual([
      'HASH Layers (seed 1) l: expert 0 took 60.0% of the tokens over the last quarter of training (load imbalance of the fixed hash routing).',
    ]);
  });

  it('returns null for a dense model', () => {
    expect(routingHealth(modelRun('transformer', [[1, 9]]))).toBeNull();
  });
});

describe('analyse input checks', () => {
  it('rejects an unknown subject', () => {
    expect(() => analyse({ run, models: [modelRun('gmlp', [[1, 9]])] }, { subject: 'smlp-xl' })).toThrow(
      'analyse: subject "smlp-xl" is not a model of the run; models: gmlp.',
    );
  });

  it('rejects evaluations out of training order', () => {
    expect(() => analyse({ run, models: [modelRun('gmlp', [[5, 9], [4, 8]])] })).toThrow(
      'analyse: models[0] (gmlp, seed 1).evaluations[1] goes back in training seconds or tokens',
    );
  });

  it('rejects a duplicate model and seed', () => {
    expect(() => analyse({ run, models: [modelRun('gmlp', [[1, 9]]), modelRun('gmlp', [[1, 9]])] })).toThrow(
      'model gmlp appears twice with seed 1',
    );
  });

  it('notes a run without sMLP and a diverged run', () => {
    const analysis = analyse({ run, models: [modelRun('gmlp', [[1, 9]], { status: 'diverged', statusReason: 'loss NaN at step 40' })] });
    expect(analysis.subject).toBeNull();
    expect(analysis.notes).toContain('gMLP (seed 1) diverged: loss NaN at step 40.');
    expect(analysis.notes).toContain('The run has no sMLP model, so there are no speedups to report.');
  });
});

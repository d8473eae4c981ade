import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashConfig, openStore } from '@moebench/results';
import {
  analyse,
  buildDocument,
  formatPositions,
  readReportData,
  renderMarkdown,
  type EvaluationPoint,
  type ModelRun,
  type ReportData,
  type RunContext,
} from '../src/index.js';
import { modelRun, testRun } from './fixtures.js';

const run = testRun;

// Sequences of 4 positions, 2 validation sequences. sMLP is scored on positions 3 and 4 only.
const unscoredPositions = { skipped: 2, seqLen: 4, cause: 'partial-prediction routing' };

/**
 * Builds a baseline evaluation at `seconds` (1000 tokens per second) whose per-target perplexity is `early`
 * at positions 1 and 2 and `late` at positions 3 and 4, over 2 sequences. On all positions its
 * perplexity is the geometric mean sqrt(early x late); on positions 3 and 4 it is `late`.
 */
function baselinePoint(seconds: number, early: number, late: number): EvaluationPoint {
  const loss = (Math.log(early) + Math.log(late)) / 2;
  return {
    step: seconds,
    tokens: seconds * 1000,
    trainingSeconds: seconds,
    validationLoss: loss,
    perplexity: Math.exp(loss),
    bitsPerByte: null,
    positionLossSums: [2 * Math.log(early), 2 * Math.log(early), 2 * Math.log(late), 2 * Math.log(late)],
    positionCounts: [2, 2, 2, 2],
  };
}

/** Builds an sMLP evaluation with perplexity `perplexity` on positions 3 and 4 and nothing scored before them. */
function subjectPoint(seconds: number, perplexity: number): EvaluationPoint {
  const loss = Math.log(perplexity);
  return {
    step: seconds,
    tokens: seconds * 1000,
    trainingSeconds: seconds,
    validationLoss: loss,
    perplexity,
    bitsPerByte: null,
    positionLossSums: [0, 0, 2 * loss, 2 * loss],
    positionCounts: [0, 0, 2, 2],
  };
}

// The Transformer ends at perplexity sqrt(100 x 25) = 50 on all positions and 25 on positions 3 and 4.
const transformer = modelRun('transformer', [], {
  evaluations: [baselinePoint(0, 256, 256), baselinePoint(10, 400, 100), baselinePoint(20, 100, 25)],
});
// sMLP reaches 50 at 8 s, and 25 at 16 + 8 x (30 - 25) / (30 - 10) = 18 s.
const smlp = modelRun('smlp', [], {
  unscoredPositions,
  evaluations: [subjectPoint(0, 256), subjectPoint(8, 50), subjectPoint(16, 30), subjectPoint(24, 10)],
});

/** `run` without its per-position figures, as read from a store older than schema version 3. */
function withoutPositions(model: ModelRun): ModelRun {
  return { ...model, evaluations: model.evaluations.map(({ positionLossSums: _sums, positionCounts: _counts, ...rest }) => rest) };
}

function markdownOf(data: ReportData): string {
  return renderMarkdown(buildDocument(analyse(data), data.run, []), 'charts');
}

describe('comparisons on the positions sMLP is scored on', () => {
  const data: ReportData = { run, models: [smlp, transformer] };
  const analysis = analyse(data);
  const comparison = analysis.comparisons[0];

  it('scores targets, times and verdicts on matched positions', () => {
    expect(analysis.matchedPositions).toEqual({ positions: [3, 4], seqLen: 4 });
    // Target: the Transformer's final perplexity on positions 3 and 4, 25, not its 50 on all positions.
    expect(comparison.target!.mean).toBeCloseTo(25, 9);
    // The Transformer first reaches 25 (on positions 3 and 4) at its last evaluation, 20 s; sMLP at 18 s.
    expect(comparison.speedups.time.baseline!.mean).toBeCloseTo(20, 9);
    expect(comparison.speedups.time.subject!.mean).toBeCloseTo(18, 9);
    expect(comparison.speedups.time.speedup!.mean).toBeCloseTo(20 / 18, 9);
    expect(comparison.speedups.tokens.speedup!.mean).toBeCloseTo(20 / 18, 9);
    expect(comparison.speedups.flops.speedup!.mean).toBeCloseTo(20 / 18, 9);
    // 1.11x is below 2x / 1.1, so the 2x claim is not reached.
    expect(comparison.claim.reachesPaperSpeedup).toBe('no');
  });

  it('keeps the model table on own positions', () => {
    const byName = (name: string) => analysis.models.find((model) => model.name === name)!;
    expect(byName('transformer').finalPerplexity!.mean).toBeCloseTo(50, 9);
    expect(byName('smlp').finalPerplexity!.mean).toBe(10);
  });

  it('states the matched positions in the report', () => {
    expect(analysis.notes).toContain(
      'sMLP is scored on positions 3 to 4 only; the targets, times to target and verdicts score every other model on the same positions ' +
        '(see Scoring under the claim table).',
    );
    expect(analysis.notes.join(' ')).not.toContain('favours');
    const markdown = markdownOf(data);
    expect(markdown).toContain(
      'Scoring. sMLP is scored on positions 3 to 4 of each 4-position validation sequence (its partial-prediction routing leaves the first 2 ' +
        'out of the loss). Later positions have more context and are easier to predict, so the comparison is made on matched positions: ' +
        "in the claim table, the time-to-target table and the verdicts, every baseline's perplexity is computed on the same positions 3 to 4, " +
        "from its validation losses stored by position, and each target is a baseline's final perplexity on those positions. " +
        'The model table and the charts show each model on its own positions (sMLP on 3 to 4, the others on all 4).',
    );
    expect(markdown).toContain("Each target is a baseline's final validation perplexity on positions 3 to 4, those sMLP is scored on. ");
    expect(markdown).not.toContain('biased in its favour');
    expect(markdown.split('\n').find((line) => line.startsWith('| Transformer | 25.00 |'))).toBeDefined();
  });
});

describe('stores without per-position figures', () => {
  it('compare on all positions and note the bias', () => {
    const analysis = analyse({ run, models: [smlp, withoutPositions(transformer)] });
    expect(analysis.matchedPositions).toBeNull();
    const comparison = analysis.comparisons[0];
    // Target 50 on all positions: sMLP reaches it at 8 s, the Transformer at 20 s.
    expect(comparison.target!.mean).toBeCloseTo(50, 9);
    expect(comparison.speedups.time.subject!.mean).toBe(8);
    expect(comparison.speedups.time.speedup!.mean).toBeCloseTo(2.5, 9);
    expect(comparison.claim.reachesPaperSpeedup).toBe('yes');
    expect(analysis.notes).toContain(
      'sMLP is scored on positions 3 to 4 only, the other models on all 4: this favours it (see Scoring under the claim table).',
    );
    expect(markdownOf({ run, models: [smlp, withoutPositions(transformer)] })).toContain(
      'The run store has no perplexity of the other models on the same positions.',
    );
  });

  it('match nothing when one evaluation lacks them', () => {
    // A store migrated from schema version 2 and then resumed has such a mix.
    const mixed: ModelRun = { ...transformer, evaluations: [withoutPositions(transformer).evaluations[0], ...transformer.evaluations.slice(1)] };
    const analysis = analyse({ run, models: [smlp, mixed] });
    expect(analysis.matchedPositions).toBeNull();
    expect(analysis.comparisons[0].target!.mean).toBeCloseTo(50, 9);
  });

  it('match nothing when a baseline skips a position', () => {
    const gap = transformer.evaluations.map((evaluation) => ({
      ...evaluation,
      positionLossSums: [...evaluation.positionLossSums!.slice(0, 3), 0],
      positionCounts: [2, 2, 2, 0],
    }));
    const analysis = analyse({ run, models: [smlp, { ...transformer, evaluations: gap }] });
    expect(analysis.matchedPositions).toBeNull();
  });
});

describe('which positions are matched', () => {
  it('reads them from the subject\'s counts', () => {
    const { unscoredPositions: _unscored, ...plain } = smlp;
    const analysis = analyse({ run, models: [plain, transformer] });
    expect(analysis.matchedPositions).toEqual({ positions: [3, 4], seqLen: 4 });
    expect(analysis.comparisons[0].target!.mean).toBeCloseTo(25, 9);
  });

  it('matches nothing for a subject scored everywhere', () => {
    const everywhere = modelRun('smlp', [], { evaluations: [baselinePoint(0, 256, 256), baselinePoint(10, 50, 10)] });
    const analysis = analyse({ run, models: [everywhere, transformer] });
    expect(analysis.matchedPositions).toBeNull();
    expect(analysis.comparisons[0].target!.mean).toBeCloseTo(50, 9);
    expect(analysis.notes.join(' ')).not.toContain('positions');
  });

  it('leaves out a non-finite matched loss', () => {
    const broken = baselinePoint(30, 100, 25);
    broken.positionLossSums = [1, 1, Number.NaN, 1];
    const analysis = analyse({ run, models: [smlp, { ...transformer, evaluations: [...transformer.evaluations, broken] }] });
    expect(analysis.matchedPositions).toEqual({ positions: [3, 4], seqLen: 4 });
    expect(analysis.comparisons[0].target!.mean).toBeCloseTo(25, 9);
  });

  it('rejects malformed per-position figures', () => {
    const bad: EvaluationPoint = { ...baselinePoint(10, 400, 100), positionCounts: [2, 2, 2] };
    expect(() => analyse({ run, models: [smlp, { ...transformer, evaluations: [bad] }] })).toThrow(
      'analyse: models[1] (transformer, seed 1).evaluations[0] has 4 positionLossSums and 3 positionCounts; give both, one entry per position, or neither.',
    );
    const fractional: EvaluationPoint = { ...baselinePoint(10, 400, 100), positionCounts: [2, 2, 1.5, 2] };
    expect(() => analyse({ run, models: [smlp, { ...transformer, evaluations: [fractional] }] })).toThrow(
      'analyse: models[1] (transformer, seed 1).evaluations[0].positionCounts[2] is 1.5; it must be an integer >= 0.',
    );
  });
});

describe('formatPositions', () => {
  it('writes runs of consecutive positions', () => {
    expect(formatPositions(Array.from({ length: 52 }, (_, index) => index + 13))).toBe('13 to 64');
    expect(formatPositions([2, 5, 6, 7])).toBe('2, 5 to 7');
    expect(formatPositions([7])).toBe('7');
  });
});

describe('per-position figures read from a run store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moebench-report-positions-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('match a partial-prediction sMLP', () => {
    const path = join(dir, 'store.sqlite');
    const store = openStore(path);
    const config = { seqLen: 4 };
    const record = store.createRun({
      id: 'r1',
      suite: 'hand',
      manifest: { gitSha: null, gitDirty: null, versions: {}, backend: {}, seeds: {}, data: {}, config, configHash: hashConfig(config) },
    });
    const accounting = { totalParameters: 10, activeParametersPerToken: 10, forwardFlopsPerToken: 1000 };
    const smlpModel = store.addModel(record.id, {
      name: 'smlp',
      architecture: 'smlp',
      config: { seqLen: 4, smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 0.5 } } },
      ...accounting,
    });
    const transformerModel = store.addModel(record.id, { name: 'transformer', architecture: 'transformer', config: { seqLen: 4 }, ...accounting });
    const write = (modelId: number, points: EvaluationPoint[]): void => {
      for (const point of points) {
        store.recordEvaluation(modelId, {
          step: point.step,
          tokensSeen: point.tokens,
          trainingSeconds: point.trainingSeconds,
          evalSeconds: 0.1,
          valLoss: point.validationLoss,
          perplexity: point.perplexity,
          bitsPerByte: 1,
          positionLossSums: point.positionLossSums!,
          positionCounts: point.positionCounts!,
        });
      }
    };
    write(smlpModel.id, smlp.evaluations);
    write(transformerModel.id, transformer.evaluations);
    for (const model of [smlpModel, transformerModel]) store.setModelStatus(model.id, 'done');
    store.close();

    const data = readReportData(path);
    expect(data.models[0].unscoredPositions).toEqual(unscoredPositions);
    expect(data.models[1].evaluations[2].positionCounts).toEqual([2, 2, 2, 2]);
    const analysis = analyse(data);
    expect(analysis.matchedPositions).toEqual({ positions: [3, 4], seqLen: 4 });
    expect(analysis.comparisons[0].speedups.time.speedup!.mean).toBeCloseTo(20 / 18, 9);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '@moebench/results';
import { runCli } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-cli-positions-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Two validation batches of 4 sequences of 16 positions; the sMLP routes on its first
// max(1, floor(0.2 x 16)) = 3 positions and scores none of them.
const SUITE = `
name: positions
backend: wasm
data: { corpus: sotu, tokenizer: byte, seqLen: 16, batchSize: 4 }
training:
  budget: { unit: steps, amount: 2 }
  evaluationInterval: { unit: steps, amount: 2 }
  evaluationBatches: 2
  checkpointInterval: { unit: steps, amount: 2 }
  warmupSteps: 1
model: { dModel: 16, layers: 2, heads: 2, experts: 4 }
models:
  - architecture: transformer
  - architecture: smlp
    config: { smlp: { smoe: { routing: partial-prediction } } }
`;

describe('moebench run with a partial-prediction sMLP', () => {
  it('stores losses by position and matches them', async () => {
    const suitePath = join(scratch, 'positions.yaml');
    writeFileSync(suitePath, SUITE);
    const runDir = join(scratch, 'run');
    const result = await runCli(['run', suitePath, '--out', runDir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    const store = openStore(join(runDir, 'store.sqlite'), { readonly: true });
    try {
      const runId = store.latestRun()!.id;
      const counts: Record<string, Array<number[] | null>> = {};
      for (const model of store.listModels(runId)) {
        const evaluations = store.evaluations(model.id);
        expect(evaluations.map((evaluation) => evaluation.step), model.name).toEqual([0, 2]);
        counts[model.name] = evaluations.map((evaluation) => evaluation.positionCounts);
        for (const evaluation of evaluations) {
          const sums = evaluation.positionLossSums!;
          expect(sums, model.name).toHaveLength(16);
          const total = sums.reduce((sum: number, value) => sum + value!, 0);
          const scored = evaluation.positionCounts!.reduce((sum, count) => sum + count, 0);
          // The stored mean loss is the mean over the scored positions.
          expect(total / scored, model.name).toBeCloseTo(evaluation.valLoss!, 5);
        }
      }
      const every = new Array<number>(16).fill(8);
      expect(counts).toEqual({ transformer: [every, every], smlp: [[0, 0, 0, ...every.slice(3)], [0, 0, 0, ...every.slice(3)]] });
    } finally {
      store.close();
    }

    const report = readFileSync(join(runDir, 'report', 'report.md'), 'utf8');
    expect(report).toContain('Scoring. sMLP is scored on positions 4 to 16 of each 16-position validation sequence');
    expect(report).toContain("every baseline's perplexity is computed on the same positions 4 to 16");
  });
});

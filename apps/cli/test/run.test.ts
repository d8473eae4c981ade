import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluationBatches, prepareDataset } from '@moebench/data';
import { hashBatches } from '../src/run.js';
import { runCli, signalAt, withStore, type CliOptions } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// A suite of two tiny models long enough to be stopped half-way.
const LONG_SUITE = `
name: resume-check
backend: wasm
data: { corpus: sotu, tokenizer: byte, seqLen: 16, batchSize: 4 }
training:
  budget: { unit: steps, amount: 80 }
  evaluationInterval: { unit: steps, amount: 20 }
  evaluationBatches: 2
  checkpointInterval: { unit: steps, amount: 15 }
  learningRate: 0.003
  warmupSteps: 5
model: { dModel: 16, layers: 2, heads: 2, experts: 4 }
models:
  - architecture: transformer
  - architecture: switch
`;
const longSuitePath = join(scratch, 'resume-check.yaml');
writeFileSync(longSuitePath, LONG_SUITE);

function finalLosses(runDir: string): Record<string, number | null> {
  return withStore(runDir, (store, runId) =>
    Object.fromEntries(store.listModels(runId).map((model) => [model.name, store.evaluations(model.id).at(-1)?.valLoss ?? null])),
  );
}

function expectCompleteSeries(runDir: string): void {
  withStore(runDir, (store, runId) => {
    expect(store.getRun(runId)?.status).toBe('done');
    for (const model of store.listModels(runId)) {
      expect(model.status, model.name).toBe('done');
      expect(store.steps(model.id).map((step) => step.step), model.name).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
      expect(store.evaluations(model.id).map((evaluation) => evaluation.step), model.name).toEqual([0, 20, 40, 60, 80]);
    }
  });
}

describe('moebench run', () => {
  const smokeDir = join(scratch, 'smoke');

  it('runs the smoke suite end to end', async () => {
    const result = await runCli(['run', 'smoke', '--out', smokeDir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Report: ${join(smokeDir, 'report', 'report.md')}`);
    withStore(smokeDir, (store, runId) => {
      const run = store.getRun(runId)!;
      expect(run.status).toBe('done');
      expect(run.manifest.gitSha).toMatch(/^[0-9a-f]{40}$/);
      expect(run.manifest.data).toMatchObject({ corpus: 'sotu', tokenizer: 'byte' });
      // The smoke suite's 2 validation batches of 4 x 16 byte tokens, rebuilt here from the corpus.
      const dataset = prepareDataset({ corpus: { name: 'sotu', paths: [] }, tokenizer: 'byte', batchSize: 4, seqLen: 16 });
      const validation = evaluationBatches(dataset.validation.tokens, { batchSize: 4, seqLen: 16, maxBatches: 2, tokenizer: dataset.tokenizer });
      expect(run.manifest.data.validationBatchesSha256).toBe(hashBatches(validation));
      const models = store.listModels(runId);
      expect(models.map((model) => model.architecture)).toEqual(['transformer', 'gmlp', 'gshard', 'switch', 'base', 'hash', 'smlp']);
      for (const model of models) {
        expect(model.status, model.name).toBe('done');
        expect(store.steps(model.id)).toHaveLength(6);
        expect(store.evaluations(model.id).map((evaluation) => evaluation.step), model.name).toEqual([0, 3, 6]);
        for (const evaluation of store.evaluations(model.id)) {
          expect(evaluation.perplexity, model.name).toBeGreaterThan(1);
          // One byte per token with the byte-level tokenizer.
          expect(evaluation.bitsPerByte!, model.name).toBeCloseTo(evaluation.valLoss! / Math.LN2, 5);
        }
      }
      for (const name of ['gshard', 'switch', 'base', 'hash']) {
        const model = models.find((candidate) => candidate.name === name)!;
        expect(store.routing(model.id).length, name).toBeGreaterThan(0);
      }
    });
    expect(existsSync(join(smokeDir, 'report', 'report.html'))).toBe(true);
  });

  it('writes the report of a finished run again', async () => {
    const outDir = join(scratch, 'smoke-report');
    const result = await runCli(['report', smokeDir, '--out', outDir]);
    expect(result.code).toBe(0);
    expect(existsSync(join(outDir, 'report.md'))).toBe(true);
    expect(result.stdout).toMatch(/transformer\s+transformer\s+done\s+6/);
  });

  it('resumes a run killed with SIGKILL to the same losses', async () => {
    const reference = join(scratch, 'reference');
    expect((await runCli(['run', longSuitePath, '--out', reference])).code).toBe(0);
    expectCompleteSeries(reference);

    const killed = join(scratch, 'killed');
    const first = await runCli(['run', longSuitePath, '--out', killed], (stdout, child) => {
      if (stdout.includes('transformer: eval at step 20')) child.kill('SIGKILL');
    });
    expect(first.signal).toBe('SIGKILL');
    const stepsBeforeKill = withStore(killed, (store, runId) => {
      expect(store.getRun(runId)?.status).toBe('running');
      const transformer = store.getModel(runId, 'transformer')!;
      expect(transformer.status).toBe('running');
      return store.steps(transformer.id).length;
    });
    expect(stepsBeforeKill).toBeGreaterThanOrEqual(20);

    // No process locks the killed run's folder, so its report states that the model stopped without finishing.
    const killedReport = join(scratch, 'killed-report');
    expect((await runCli(['report', killed, '--out', killedReport])).code).toBe(0);
    const reportText = readFileSync(join(killedReport, 'report.md'), 'utf8');
    expect(reportText).toContain('Transformer (seed 0) stopped without finishing');
    expect(reportText).not.toContain('The store cannot tell which');

    const resumed = await runCli(['run', '--resume', killed]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/transformer: transformer, seed 0, .*resuming at step (15|30|45|60|75)/);
    expectCompleteSeries(killed);
    const expected = finalLosses(reference);
    for (const [name, loss] of Object.entries(finalLosses(killed))) expect(loss, name).toBeCloseTo(expected[name]!, 5);
  });

  it('records a diverged model and goes on', async () => {
    // A learning rate of 1e6 without clipping sends the weights past float32 range within a few steps.
    const path = join(scratch, 'diverge.yaml');
    writeFileSync(path, LONG_SUITE.replace('learningRate: 0.003', 'learningRate: 1000000\n  gradientClipNorm: 0').replace('warmupSteps: 5', 'warmupSteps: 0'));
    const runDir = join(scratch, 'diverged');
    const result = await runCli(['run', path, '--out', runDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/transformer: diverged at step \d+/);
    withStore(runDir, (store, runId) => {
      expect(store.getRun(runId)?.status).toBe('done');
      for (const model of store.listModels(runId)) {
        expect(model.status, model.name).toBe('diverged');
        expect(model.divergedStep, model.name).toBe(store.steps(model.id).length + 1);
        expect(model.divergedStep, model.name).toBeLessThan(80);
      }
      expect(store.listModels(runId).map((model) => model.name)).toEqual(['transformer', 'switch']);
    });
  });

  it('stops cleanly on SIGINT and marks the run interrupted', async () => {
    const runDir = join(scratch, 'interrupted');
    // One signal only: a second one makes the CLI exit at once, without a final checkpoint.
    const result = await runCli(['run', longSuitePath, '--out', runDir], signalAt('transformer: eval at step 20', 'SIGINT'));
    expect(result.code).toBe(130);
    expect(result.stdout).toContain(`Continue with: moebench run --resume ${runDir}`);
    withStore(runDir, (store, runId) => {
      const run = store.getRun(runId)!;
      expect(run.status).toBe('interrupted');
      expect(run.error).toBe('SIGINT');
      const transformer = store.getModel(runId, 'transformer')!;
      expect(transformer.status).toBe('interrupted');
      const lastStep = store.lastStep(transformer.id)!.step;
      expect(store.latestCheckpoint(transformer.id)?.step).toBe(lastStep);
      expect(store.getModel(runId, 'switch')).toBeUndefined();
    });

    // A resume must train on the kernel setup the run started with.
    const otherKernels = await runCli(['run', '--resume', runDir], undefined, { env: { MOEBENCH_STOCK_KERNELS: '1' } });
    expect(otherKernels.code).toBe(1);
    expect(otherKernels.stderr).toMatch(/the run started with .*, and this process has stock wasm kernels/);
    // Rejected before the data is prepared.
    expect(otherKernels.stdout).not.toContain('Data: ');
    withStore(runDir, (store, runId) => expect(store.getRun(runId)!.status).toBe('interrupted'));

    const resumed = await runCli(['run', '--resume', runDir]);
    expect(resumed.code).toBe(0);
    expectCompleteSeries(runDir);
  });

  it('marks the run interrupted on a second signal', async () => {
    const runDir = join(scratch, 'interrupted-twice');
    // Two different signals, because the kernel merges a second pending SIGINT into the first.
    const result = await runCli(['run', longSuitePath, '--out', runDir], signalAt('transformer: eval at step 20', 'SIGINT', 'SIGTERM'));
    expect(result.code).toBe(130);
    // The kernel may deliver the two pending signals in either order.
    const order = /(SIGTERM) after (SIGINT)|(SIGINT) after (SIGTERM)/.exec(result.stdout);
    expect(order).not.toBeNull();
    const [second, first] = order![1] ? [order![1], order![2]] : [order![3], order![4]];
    expect(result.stdout).toContain(`${second} after ${first}: exiting without waiting for the current step.`);
    withStore(runDir, (store, runId) => {
      const run = store.getRun(runId)!;
      expect(run.status).toBe('interrupted');
      expect(run.error).toBe(`${first}, then ${second}`);
      const transformer = store.getModel(runId, 'transformer')!;
      expect(transformer.status).toBe('interrupted');
      expect(store.steps(transformer.id).length).toBeGreaterThanOrEqual(20);
    });

    const resumed = await runCli(['run', '--resume', runDir]);
    expect(resumed.code).toBe(0);
    expectCompleteSeries(runDir);
  });

  it('treats SIGTERM like SIGINT', async () => {
    const runDir = join(scratch, 'terminated');
    const result = await runCli(['run', longSuitePath, '--out', runDir], signalAt('transformer: eval at step 20', 'SIGTERM'));
    expect(result.code).toBe(130);
    withStore(runDir, (store, runId) => {
      expect(store.getRun(runId)?.status).toBe('interrupted');
      expect(store.getRun(runId)?.error).toBe('SIGTERM');
      expect(store.getModel(runId, 'transformer')?.status).toBe('interrupted');
    });
  });
});

describe('moebench run with a failing model', () => {
  const preload = pathToFileURL(join(import.meta.dirname, 'fail-training-step.mjs')).href;
  // Makes the listed gradient computations of the child process raise, counted over the whole run.
  const failing = (steps: string): CliOptions => ({ nodeArgs: ['--import', preload], env: { MOEBENCH_TEST_FAIL_STEPS: steps } });
  const failedDir = join(scratch, 'failed-once');
  const message = 'injected kernel failure in training step call 19';

  it('marks the failed model and trains the next', async () => {
    const result = await runCli(['run', longSuitePath, '--out', failedDir], undefined, failing('19'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    const storePath = join(failedDir, 'store.sqlite');
    const stackPath = join(failedDir, 'errors', 'transformer.txt');
    expect(result.stdout).toContain(
      `transformer: training failed after step 18: ${message}. Marked failed in ${storePath}; the run continues. Stack trace: ${stackPath}.`,
    );
    expect(result.stdout).toMatch(/switch: done after 80 steps/);
    expect(result.stdout).toContain(`Report: ${join(failedDir, 'report', 'report.md')}`);
    expect(result.stdout).toContain(
      `1 of 2 model run(s) failed during training; see the lines above. After fixing the cause, train them again with: moebench run --resume ${failedDir}`,
    );

    withStore(failedDir, (store, runId) => {
      const run = store.getRun(runId)!;
      expect(run.status).toBe('done');
      expect(run.error).toBeNull();
      const transformer = store.getModel(runId, 'transformer')!;
      expect(transformer.status).toBe('failed');
      expect(transformer.reason).toBe(message);
      expect(transformer.failedAfterStep).toBe(18);
      expect(transformer.finishedAt).not.toBeNull();
      expect(store.steps(transformer.id).map((step) => step.step)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
      expect(store.latestCheckpoint(transformer.id)?.step).toBe(15);
      const switchModel = store.getModel(runId, 'switch')!;
      expect(switchModel.status).toBe('done');
      expect(store.steps(switchModel.id)).toHaveLength(80);
      expect(store.evaluations(switchModel.id).map((evaluation) => evaluation.step)).toEqual([0, 20, 40, 60, 80]);
    });

    const report = readFileSync(join(failedDir, 'report', 'report.md'), 'utf8');
    expect(report).toContain(`- Transformer (seed 0) failed after step 18: ${message}. It stopped before the end of its budget`);
    expect(readFileSync(join(failedDir, 'report', 'summary.txt'), 'utf8')).toMatch(/transformer\s+transformer\s+failed@18\s+18\s/);
    const stack = readFileSync(stackPath, 'utf8');
    expect(stack).toContain(`Error: ${message}`);
    expect(stack).toMatch(/\n\s+at /);
  });

  it('trains a failed model again on --resume', async () => {
    const resumed = await runCli(['run', '--resume', failedDir]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`transformer: training it again; it failed after step 18 in the earlier attempt: ${message}`);
    expect(resumed.stdout).toMatch(/transformer: transformer, seed 0, .*resuming at step 15\n/);
    expect(resumed.stdout).toContain('switch: kept from the earlier attempt of this run (done).');
    expectCompleteSeries(failedDir);
    withStore(failedDir, (store, runId) => {
      const transformer = store.getModel(runId, 'transformer')!;
      expect(transformer.reason).toBeNull();
      expect(transformer.failedAfterStep).toBeNull();
    });
    expect(existsSync(join(failedDir, 'errors', 'transformer.txt'))).toBe(false);

    // Training again from the checkpoint ends with the losses of a run that never failed.
    const reference = join(scratch, 'failed-reference');
    expect((await runCli(['run', longSuitePath, '--out', reference])).code).toBe(0);
    const expected = finalLosses(reference);
    for (const [name, loss] of Object.entries(finalLosses(failedDir))) expect(loss, name).toBeCloseTo(expected[name]!, 5);
  });

  it('ends a run whose every model failed with its store and report', async () => {
    const runDir = join(scratch, 'failed-all');
    const result = await runCli(['run', longSuitePath, '--out', runDir], undefined, failing('all'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('transformer: training failed after step 0: injected kernel failure in training step call 1.');
    expect(result.stdout).toContain('switch: training failed after step 0: injected kernel failure in training step call 2.');
    expect(result.stdout).toContain('2 of 2 model run(s) failed during training');
    withStore(runDir, (store, runId) => {
      expect(store.getRun(runId)?.status).toBe('done');
      const models = store.listModels(runId);
      expect(models.map((model) => model.name)).toEqual(['transformer', 'switch']);
      for (const model of models) {
        expect(model.status, model.name).toBe('failed');
        expect(model.failedAfterStep, model.name).toBe(0);
        expect(store.steps(model.id), model.name).toEqual([]);
        // The evaluation of the initial weights ran before the first step failed.
        expect(store.evaluations(model.id).map((evaluation) => evaluation.step), model.name).toEqual([0]);
      }
    });
    expect(existsSync(join(runDir, 'report', 'report.md'))).toBe(true);
  });
});

describe('moebench run input checks', () => {
  function suiteFile(name: string, data: string): string {
    const path = join(scratch, `${name}.yaml`);
    writeFileSync(path, LONG_SUITE.replace('data: { corpus: sotu, tokenizer: byte, seqLen: 16, batchSize: 4 }', data));
    return path;
  }

  async function expectRejected(args: string[], message: string | RegExp, runDir?: string): Promise<void> {
    const result = await runCli(args);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    if (runDir !== undefined) expect(existsSync(join(runDir, 'store.sqlite'))).toBe(false);
  }

  it('rejects a missing corpus path before training', async () => {
    const path = suiteFile('missing', `data: { corpus: files, paths: [${join(scratch, 'nowhere')}], seqLen: 16, batchSize: 4 }`);
    const runDir = join(scratch, 'missing-run');
    await expectRejected(['run', path, '--out', runDir], /paths\[0\].*nowhere/, runDir);
  });

  it('rejects a binary corpus file before training', async () => {
    const binary = join(scratch, 'weights.bin');
    writeFileSync(binary, Buffer.from([0, 1, 2, 255, 254, 0, 0, 7]));
    const path = suiteFile('binary', `data: { corpus: files, paths: [${binary}], seqLen: 16, batchSize: 4 }`);
    const runDir = join(scratch, 'binary-run');
    await expectRejected(['run', path, '--out', runDir], /weights\.bin/, runDir);
  });

  it('rejects a corpus smaller than one batch', async () => {
    const small = join(scratch, 'small.txt');
    writeFileSync(small, 'Too short to hold a batch of sixteen-token windows.\n');
    const path = suiteFile('small', `data: { corpus: files, paths: [${small}], seqLen: 16, batchSize: 4 }`);
    await expectRejected(['run', path, '--out', join(scratch, 'small-run')], /smaller than one batch/);
  });

  it('rejects an invalid suite file', async () => {
    const path = suiteFile('bad', 'data: { corpus: sotu, tokenizer: byte, seqLen: 0, batchSize: 4 }');
    await expectRejected(['run', path], 'Invalid suite bad.yaml: data.seqLen is 0; allowed: an integer >= 2 and <= 9007199254740991.');
  });

  it('exits with status 2 on an unknown suite name', async () => {
    const result = await runCli(['run', 'huge']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('Suite "huge" not found: it is neither a built-in suite (smoke, quick, paper) nor an existing file.\nRun "moebench help" for the commands and options.\n');
  });

  it('refuses to overwrite a run folder', async () => {
    await expectRejected(['run', 'smoke', '--out', join(scratch, 'smoke')], /already exists and is not empty: continue it with --resume/);
  });

  it('rejects --out naming a file', async () => {
    const file = join(scratch, 'not-a-folder.txt');
    writeFileSync(file, 'text\n');
    await expectRejected(['run', 'smoke', '--out', file], `--out ${file} is a file; allowed: a new folder or an empty one.`);
  });

  it('rejects --resume of a finished run', async () => {
    const smokeDir = join(scratch, 'smoke');
    const result = await runCli(['run', '--resume', smokeDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/run smoke-\d{8}-\d{6} is already done, so there is nothing to continue; allowed: an interrupted or failed run/);
    expect(result.stdout).toBe('');
  });

  it('rejects --resume on another backend', async () => {
    await expectRejected(['run', '--resume', join(scratch, 'smoke'), '--backend', 'cpu'], /--backend cpu: run folder .* started on backend "wasm"/);
  });

  it('rejects --resume with a corrupt run.json', async () => {
    const runDir = join(scratch, 'corrupt-settings');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'run.json'), '{"suite": ');
    await expectRejected(['run', '--resume', runDir], `--resume ${runDir}: run.json is not valid JSON`);
    writeFileSync(join(runDir, 'run.json'), '{"suite": {}, "only": null}');
    await expectRejected(['run', '--resume', runDir], `--resume ${runDir}: run.json lacks a valid runId, backend or only field`);
  });

  it('rejects --resume of a folder that holds no run', async () => {
    await expectRejected(['run', '--resume', scratch], /no run\.json found there/);
  });

  it('exits with status 2 on an unknown --only name', async () => {
    const runDir = join(scratch, 'only-run');
    const result = await runCli(['run', 'smoke', '--only', 'nosuch', '--out', runDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('moebench run: --only: "nosuch" is neither a model name nor an architecture of suite smoke.');
    expect(existsSync(runDir)).toBe(false);
  });

  it('exits with status 2 on an unknown flag', async () => {
    const result = await runCli(['run', '--fast']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('moebench run: unknown option --fast. Valid options: --out, --backend, --seed, --only, --resume.\nRun "moebench help" for the commands and options.\n');
  });
});

describe('hashBatches', () => {
  const batch = (first: number, targetBytes?: number) => ({ inputs: Int32Array.from([first, 2]), targets: Int32Array.from([2, 3]), batchSize: 1, seqLen: 2, targetBytes });

  it('depends on ids and target bytes', () => {
    expect(hashBatches([batch(1)])).toBe(hashBatches([batch(1)]));
    expect(hashBatches([batch(1)])).toMatch(/^[0-9a-f]{64}$/);
    expect(hashBatches([batch(4)])).not.toBe(hashBatches([batch(1)]));
    expect(hashBatches([batch(1, 5)])).not.toBe(hashBatches([batch(1)]));
    expect(hashBatches([batch(1), batch(1)])).not.toBe(hashBatches([batch(1)]));
  });
});

describe('moebench env and list', () => {
  it('describes the backend it starts', async () => {
    const result = await runCli(['env', '--backend', 'wasm']);
    expect(result.code).toBe(0);
    const facts = JSON.parse(result.stdout) as { backend: { backend: string }; versions: Record<string, string> };
    expect(facts.backend.backend).toBe('wasm');
    expect(facts.versions['@tensorflow/tfjs-core']).toBe('4.22.0');
  });

  it('lists architectures and suites', async () => {
    const result = await runCli(['list']);
    expect(result.code).toBe(0);
    for (const name of ['transformer', 'gmlp', 'gshard', 'switch', 'base', 'hash', 'smlp', 'smoke', 'quick', 'paper']) expect(result.stdout).toContain(name);
  });
});

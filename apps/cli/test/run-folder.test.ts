import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_HOLDER_FILE, readHolder } from '@moebench/results';
import { CLI, runCli, signalAt, withStore, type CliResult } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-cli-folder-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Two tiny models, 80 steps each: long enough to be paused or stopped after the first evaluation.
function suiteText(name: string, data: string, extra: { evaluationBatches?: number; models?: string } = {}): string {
  return `
name: ${name}
backend: wasm
data: ${data}
training:
  budget: { unit: steps, amount: 80 }
  evaluationInterval: { unit: steps, amount: 20 }
  evaluationBatches: ${extra.evaluationBatches ?? 2}
  checkpointInterval: { unit: steps, amount: 15 }
  learningRate: 0.003
  warmupSteps: 5
model: { dModel: 16, layers: 2, heads: 2, experts: 4 }
models:
${extra.models ?? '  - architecture: transformer\n  - architecture: switch'}
`;
}

function writeSuite(file: string, text: string): string {
  const path = join(scratch, file);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const sotuSuite = writeSuite('lock-check.yaml', suiteText('lock-check', '{ corpus: sotu, tokenizer: byte, seqLen: 16, batchSize: 4 }'));

// Sixty small text files, each a document of the `files` corpus; the words follow a fixed rule.
function writeCorpus(folder: string): void {
  mkdirSync(folder, { recursive: true });
  const words = ['the', 'council', 'voted', 'on', 'a', 'budget', 'for', 'river', 'bridges', 'and', 'schools', 'in', 'spring', 'while', 'farmers', 'planted'];
  for (let file = 0; file < 60; file++) {
    const sentences: string[] = [];
    for (let sentence = 0; sentence < 30; sentence++) {
      const length = 6 + ((file * 7 + sentence * 3) % 5);
      const sentenceWords = Array.from({ length }, (_, i) => words[(file * 5 + sentence * 11 + i * 13) % words.length]);
      sentences.push(`${sentenceWords.join(' ')}.`);
    }
    writeFileSync(join(folder, `part-${String(file).padStart(2, '0')}.txt`), `${sentences.join(' ')}\n`);
  }
}

function expectDone(runDir: string): void {
  withStore(runDir, (store, runId) => {
    expect(store.getRun(runId)?.status).toBe('done');
    for (const model of store.listModels(runId)) {
      expect(model.status, model.name).toBe('done');
      expect(store.steps(model.id).map((step) => step.step), model.name).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    }
  });
}

/**
 * Starts the CLI and resolves `paused` with the child once its stdout contains `marker`, after
 * sending it SIGSTOP. A stopped process stays alive, so it holds its run folder lock for as long as
 * the test needs, whatever the machine's load.
 */
function startPaused(args: string[], marker: string): { paused: Promise<ChildProcess>; finished: Promise<CliResult> } {
  let resolvePaused!: (child: ChildProcess) => void;
  const paused = new Promise<ChildProcess>((resolve) => (resolvePaused = resolve));
  let stopped = false;
  const finished = runCli(args, (stdout, child) => {
    if (!stopped && stdout.includes(marker)) {
      stopped = true;
      child.kill('SIGSTOP');
      resolvePaused(child);
    }
  });
  return { paused, finished };
}

// Runs the CLI from another working directory than the repository root.
function runCliIn(cwd: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('run folder lock', () => {
  it('rejects a second process while the first runs', async () => {
    const runDir = join(scratch, 'locked');
    const first = startPaused(['run', sotuSuite, '--out', runDir], 'transformer: eval at step 20');
    const child = await first.paused;

    const resumed = await runCli(['run', '--resume', runDir]);
    const holder = readHolder(join(runDir, LOCK_HOLDER_FILE));
    expect(holder?.pid).toBe(child.pid);
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toContain(`Run folder ${runDir} is in use by process ${child.pid} on `);
    expect(resumed.stderr).toContain(`started at ${holder!.startedAt}`);
    expect(resumed.stdout).toBe('');

    const sameOut = await runCli(['run', 'smoke', '--out', runDir]);
    expect(sameOut.code).toBe(1);
    expect(sameOut.stderr).toContain(`Run folder ${runDir} is in use by process ${child.pid} on `);
    expect(sameOut.stdout).toBe('');

    child.kill('SIGCONT');
    const result = await first.finished;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectDone(runDir);
    expect(readdirSync(runDir)).not.toContain(LOCK_HOLDER_FILE);
  });

  it('takes over the lock of a killed process', async () => {
    const runDir = join(scratch, 'stale');
    const first = await runCli(['run', sotuSuite, '--out', runDir], (stdout, child) => {
      if (stdout.includes('transformer: eval at step 20')) child.kill('SIGKILL');
    });
    expect(first.signal).toBe('SIGKILL');
    const holder = readHolder(join(runDir, LOCK_HOLDER_FILE));
    expect(holder).not.toBeNull();

    // A new run into that folder is rejected before it touches the lock, so the dead holder's record stays.
    const rejected = await runCli(['run', sotuSuite, '--out', runDir]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain(`Run folder ${runDir} already exists and is not empty: continue it with --resume`);
    expect(rejected.stdout).not.toContain('Took over the lock');
    expect(readHolder(join(runDir, LOCK_HOLDER_FILE))).toEqual(holder);

    const resumed = await runCli(['run', '--resume', runDir]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(
      `Took over the lock of run folder ${runDir} from process ${holder!.pid} on ${holder!.host} (started at ${holder!.startedAt}), which ended without releasing it`,
    );
    expect(resumed.stdout.match(/Took over the lock/g)).toHaveLength(1);
    expectDone(runDir);
  });
});

describe('default run folders', () => {
  it('gives two runs started together without --out two folders', async () => {
    const cwd = mkdtempSync(join(scratch, 'default-'));
    const [first, second] = await Promise.all([runCliIn(cwd, ['run', sotuSuite]), runCliIn(cwd, ['run', sotuSuite])]);
    expect(first.stderr).toBe('');
    expect(second.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const folders = readdirSync(join(cwd, 'runs'));
    expect(folders).toHaveLength(2);
    for (const folder of folders) {
      expect(folder).toMatch(/^lock-check-\d{8}-\d{6}(-\d+)?$/);
      expectDone(join(cwd, 'runs', folder));
    }
  });
});

describe('moebench run --resume data check', () => {
  it('rejects a corpus edited after the interruption', async () => {
    const corpus = join(scratch, 'edited-corpus');
    writeCorpus(corpus);
    const suite = writeSuite('edited.yaml', suiteText('edited', `{ corpus: files, paths: [${corpus}], tokenizer: byte, seqLen: 16, batchSize: 4 }`));
    const runDir = join(scratch, 'edited-run');
    const first = await runCli(['run', suite, '--out', runDir], signalAt('transformer: eval at step 20', 'SIGINT'));
    expect(first.code).toBe(130);

    // One word of the first document, which lies in the training split.
    const edited = join(corpus, 'part-00.txt');
    writeFileSync(edited, readFileSync(edited, 'utf8').replace('council', 'counsel'));
    const resumed = await runCli(['run', '--resume', runDir]);
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toMatch(/--resume .*: the data differs from the data the run started with: the train split changed \(SHA-256 [0-9a-f]{12}\.\.\. of \d+ bytes, now [0-9a-f]{12}\.\.\. of \d+ bytes\)\./);
    expect(resumed.stdout).not.toContain('transformer: transformer, seed 0');
    withStore(runDir, (store, runId) => {
      expect(store.getRun(runId)?.status).toBe('interrupted');
      expect(store.getModel(runId, 'transformer')?.status).toBe('interrupted');
    });

    // With the text restored, the run continues.
    writeFileSync(edited, readFileSync(edited, 'utf8').replace('counsel', 'council'));
    const restored = await runCli(['run', '--resume', runDir]);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expectDone(runDir);
  });
});

describe('moebench run suite paths', () => {
  it('resolves data.paths against the suite folder', async () => {
    const folder = join(scratch, 'relative');
    writeCorpus(join(folder, 'corpus'));
    const suite = writeSuite(
      'relative/suite.yaml',
      suiteText('relative', '{ corpus: files, paths: [corpus], tokenizer: byte, seqLen: 16, batchSize: 4 }', {
        evaluationBatches: 500,
        models: '  - architecture: transformer',
      }),
    );
    const runDir = join(scratch, 'relative-run');
    const first = await runCli(['run', suite, '--out', runDir], signalAt('transformer: eval at step 20', 'SIGINT'));
    expect(first.code).toBe(130);
    expect(first.stdout).toMatch(/The validation split holds (\d+) batch\(es\) of 4 x 16 tokens, fewer than training\.evaluationBatches = 500, so every evaluation uses those \1\./);
    const settings = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as { suite: { data: { paths: string[] } } };
    expect(settings.suite.data.paths).toEqual([join(folder, 'corpus')]);

    const resumed = await runCliIn(tmpdir(), ['run', '--resume', runDir]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expectDone(runDir);
  });

  it('rejects a suite name that leaves runs/', async () => {
    const suite = writeSuite('escape.yaml', suiteText('../../escaped', '{ corpus: sotu, seqLen: 16, batchSize: 4 }'));
    const result = await runCli(['run', suite]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Invalid suite escape.yaml: name is "../../escaped"; allowed: at most 64 characters: letters, digits');
  });
});

describe('moebench run model config checks', () => {
  const cases: Array<[string, string, string]> = [
    ['switch', '  - architecture: transformer\n  - architecture: switch\n    config: { switch: { capacityFator: 2 } }', 'models[1].config.switch.capacityFator'],
    ['gshard', '  - architecture: gshard\n    config: { gshard: { capacityFactor: big } }', 'models[0].config.gshard.capacityFactor'],
    ['gmlp', '  - architecture: transformer\n  - architecture: gmlp\n    config: { gmlp: { spatialInitEpsilonn: 0.01 } }', 'models[1].config.gmlp.spatialInitEpsilonn'],
    ['smlp', '  - architecture: smlp\n    config: { smlp: { smoe: { routingg: all } } }', 'models[0].config.smlp.smoe.routingg'],
  ];
  for (const [name, models, location] of cases) {
    it(`rejects a bad ${name} option before loading data`, async () => {
      const suite = writeSuite(`bad-${name}.yaml`, suiteText(`bad-${name}`, '{ corpus: sotu, seqLen: 16, batchSize: 4 }', { models }));
      const runDir = join(scratch, `bad-${name}-run`);
      const result = await runCli(['run', suite, '--out', runDir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`moebench run: Suite bad-${name}, model "${name}" (${name}): ${location}: `);
      expect(result.stdout).not.toContain('Data: ');
      // Checked without weights, so before the backend starts (its start line names the suite).
      expect(result.stdout).not.toContain('moebench run: suite');
      expect(existsSync(runDir)).toBe(false);
    });
  }
});

describe('moebench file system errors', () => {
  const file = join(scratch, 'plain-file.txt');
  writeFileSync(file, 'text\n');

  it('names a run folder that cannot be created', async () => {
    const runDir = join(file, 'run');
    const result = await runCli(['run', 'smoke', '--out', runDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `moebench run: cannot create the run folder ${runDir} (a part of the path is a file, not a folder, ENOTDIR); choose another --out or make its parent folder writable.\n`,
    );
    expect(result.stdout).toBe('');
  });

  it('rejects a report folder that is a file before writing', async () => {
    const runDir = join(scratch, 'report-source');
    expect((await runCli(['run', 'smoke', '--out', runDir])).code).toBe(0);
    const result = await runCli(['report', runDir, '--out', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`moebench report: the report folder ${file} is a file; choose another --out, or remove the file.\n`);
    expect(result.stdout).toBe('');
  });

  it('suggests --resume only for a run folder', async () => {
    const folder = join(scratch, 'not-a-run');
    mkdirSync(folder);
    writeFileSync(join(folder, 'notes.txt'), 'mine\n');
    const result = await runCli(['run', 'smoke', '--out', folder]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Run folder ${folder} already exists and is not empty: it is not a moebench run folder (it has no run.json), so choose another --out.`);
    expect(readdirSync(folder)).toEqual(['notes.txt']);
  });
});

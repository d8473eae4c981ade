import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { DataManifest } from '@moebench/data';
import { FolderLockedError, LOCK_HOLDER_FILE, lockFolder, type LockHolder } from '@moebench/results';
import { parseCommandLine } from '../src/args.js';
import { runCli } from './helpers.js';
import { locateConfigField } from '../src/plan.js';
import type { EvaluationMetrics, StepMetrics } from '@moebench/train';
import { fitLine, ProgressReporter } from '../src/progress.js';
import { dataChanges, invocation } from '../src/run.js';
import { loadSuite, suitesFolder, validateSuite, type Suite } from '../src/suite.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-cli-checks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const smoke = parse(readFileSync(join(suitesFolder(), 'smoke.yaml'), 'utf8')) as Record<string, unknown>;

function smokeNamed(name: string): unknown {
  return { ...structuredClone(smoke), name };
}

describe('parseCommandLine flags', () => {
  it('rejects a negative --seed with the allowed values', () => {
    expect(() => parseCommandLine(['run', '--seed', '-1'])).toThrow('moebench run: --seed must be an integer >= 0, received "-1".');
  });

  it('reads --help and --version after a command', () => {
    expect(parseCommandLine(['run', '--help'])).toEqual({ command: 'help' });
    expect(parseCommandLine(['report', 'runs/a', '-h'])).toEqual({ command: 'help' });
    expect(parseCommandLine(['--version'])).toEqual({ command: 'version' });
    expect(parseCommandLine(['run', 'smoke', '--version'])).toEqual({ command: 'version' });
    expect(parseCommandLine(['version'])).toEqual({ command: 'version' });
  });

  it('words the argument count in the error', () => {
    expect(() => parseCommandLine(['list', 'extra'])).toThrow('moebench list: unexpected argument "extra"; it takes no arguments.');
    expect(() => parseCommandLine(['report', 'a', 'b', 'c'])).toThrow('moebench report: unexpected arguments "b c"; it takes at most one argument.');
  });
});

describe('fitLine', () => {
  const fields = ['step 12', 'loss 2.5000', '12.3k tok/s', '0:05 left', 'val ppl 13.6'];

  it('keeps every field that fits', () => {
    expect(fitLine('smlp [--] 5%', fields, 200)).toBe('smlp [--] 5% step 12, loss 2.5000, 12.3k tok/s, 0:05 left, val ppl 13.6');
  });

  it('drops whole fields at the width', () => {
    const full = 'smlp [--] 5% step 12, loss 2.5000, 12.3k tok/s, 0:05 left, val ppl 13.6';
    // One column short of the full line: the last field goes whole, never as "val ppl 13.".
    expect(fitLine('smlp [--] 5%', fields, full.length - 1)).toBe('smlp [--] 5% step 12, loss 2.5000, 12.3k tok/s, 0:05 left');
    expect(fitLine('smlp [--] 5%', fields, 'smlp [--] 5% step 12'.length)).toBe('smlp [--] 5% step 12');
    expect(fitLine('smlp [--] 5%', fields, 'smlp [--] 5% step 1'.length)).toBe('smlp [--] 5%');
  });

  it('keeps the bar line within the terminal', () => {
    let written = '';
    const reporter = new ProgressReporter({ write: (chunk) => void (written += chunk), isTTY: true, columns: 90 });
    const step: StepMetrics = {
      step: 50,
      loss: 2.5,
      crossEntropy: 2.5,
      auxLoss: 0,
      learningRate: 1e-3,
      gradientNorm: 1,
      tokens: 3200,
      tokensPerSecond: 12345,
      stepSeconds: 0.1,
      trainingSeconds: 5,
      routing: [],
    };
    const evaluation = { step: 50, loss: 2.61, perplexity: 13.6, bitsPerByte: 3.77, evaluationSeconds: 0.4 } as EvaluationMetrics;
    reporter.startModel('gmlp', { unit: 'seconds', amount: 10 });
    reporter.step(step);
    reporter.evaluation(evaluation);
    reporter.step(step);
    const bar = written.slice(written.lastIndexOf('\r\x1b[2K') + '\r\x1b[2K'.length);
    // The full line is 94 characters: its last field, "val ppl 13.6", does not fit in 89 and goes whole.
    expect(bar).toBe('gmlp [############------------] 50% step 50, loss 2.5000, 12.3k tok/s, 0:05 left');
  });

  it('cuts a head wider than the width', () => {
    expect(fitLine('a-very-long-model-name [----]', fields, 10)).toBe('a-very-lon');
  });
});

describe('suite name', () => {
  const rejected = ['../../tmp/escaped', 'runs/x', '<img src=x>', '.hidden', 'a'.repeat(65), 'two words'];
  for (const name of rejected) {
    it(`rejects ${JSON.stringify(name)}`, () => {
      expect(() => validateSuite(smokeNamed(name), 'smoke.yaml')).toThrow(
        `Invalid suite smoke.yaml: name is ${JSON.stringify(name)}; allowed: at most 64 characters: letters, digits, ".", "_" and "-", starting with a letter or digit.`,
      );
    });
  }

  it('accepts 64 characters', () => {
    expect(validateSuite(smokeNamed('a'.repeat(64)), 'smoke.yaml').name).toBe('a'.repeat(64));
  });
});

describe('loadSuite data paths', () => {
  it('resolves relative paths against the suite folder', () => {
    const folder = join(scratch, 'suites');
    mkdirSync(folder, { recursive: true });
    const suite = { ...structuredClone(smoke), data: { corpus: 'files', paths: ['texts', '../shared/more.txt', '/abs/corpus'], seqLen: 16, batchSize: 4 } };
    const path = join(folder, 'relative.json');
    writeFileSync(path, JSON.stringify(suite));
    expect(loadSuite(path).data.paths).toEqual([join(folder, 'texts'), join(scratch, 'shared', 'more.txt'), '/abs/corpus']);
  });
});

describe('locateConfigField', () => {
  const suite = {
    model: { dModel: 16, heads: 2, switch: { jitterEps: 0.1 } },
    models: [
      { name: 'transformer', architecture: 'transformer', config: {} },
      { name: 'switch', architecture: 'switch', config: { switch: { capacityFator: 2, jitterEps: 0.2 } } },
    ],
  } as unknown as Suite;

  it('names the deepest field the message names', () => {
    expect(locateConfigField(suite, 1, 'Switch: unknown option "capacityFator"; the options are ...')).toBe('models[1].config.switch.capacityFator');
  });

  it('prefers the model config, then the first field named', () => {
    expect(locateConfigField(suite, 1, 'Switch: jitterEps must be >= 0')).toBe('models[1].config.switch.jitterEps');
    expect(locateConfigField(suite, 0, 'heads must divide dModel (16), received heads = 3')).toBe('model.heads');
  });

  it('returns null when the message names no field', () => {
    expect(locateConfigField(suite, 0, 'memory access out of bounds')).toBeNull();
  });
});

describe('dataChanges', () => {
  const split = (sha256: string, bytes: number) => ({ sha256, bytes, tokens: bytes, bytesPerToken: 1, documents: 1 });
  const manifest: DataManifest = {
    corpus: 'files',
    source: '/data/texts',
    splitRule: 'documents in order',
    tokenizer: 'byte',
    vocabSize: 256,
    splits: { train: split('a'.repeat(64), 900), validation: split('b'.repeat(64), 50), test: split('c'.repeat(64), 50) },
  };
  const recorded = { ...manifest, validationBatchesSha256: 'f'.repeat(64) } as unknown as Record<string, unknown>;

  it('finds no change in the same data', () => {
    expect(dataChanges(recorded, manifest, 'f'.repeat(64))).toEqual([]);
  });

  it('names a changed split with both hashes and sizes', () => {
    const changed = { ...manifest, splits: { ...manifest.splits, train: split('d'.repeat(64), 901) } };
    expect(dataChanges(recorded, changed, 'f'.repeat(64))).toEqual([
      `the train split changed (SHA-256 ${'a'.repeat(12)}... of 900 bytes, now ${'d'.repeat(12)}... of 901 bytes)`,
    ]);
  });

  it('names a changed tokenizer and changed validation batches', () => {
    expect(dataChanges(recorded, { ...manifest, tokenizer: 'gpt2' }, 'f'.repeat(64))).toEqual(['tokenizer byte is now gpt2']);
    expect(dataChanges(recorded, manifest, 'e'.repeat(64))).toEqual(['the validation batches changed']);
  });

  it('ignores a test split change, which runs never read', () => {
    const changed = { ...manifest, splits: { ...manifest.splits, test: split('d'.repeat(64), 50) } };
    expect(dataChanges(recorded, changed, 'f'.repeat(64))).toEqual([]);
  });
});

describe('lockFolder', () => {
  it('rejects a second holder and names the first', () => {
    const folder = join(scratch, 'lock-twice');
    mkdirSync(folder);
    const lock = lockFolder(folder, 'first');
    try {
      let caught: unknown;
      try {
        lockFolder(folder, 'second');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(FolderLockedError);
      const holder = (caught as FolderLockedError).holder;
      expect(holder?.pid).toBe(process.pid);
      expect(holder?.command).toBe('first');
      expect((caught as Error).message).toContain(`${folder} is in use by process ${process.pid} on `);
    } finally {
      lock.release();
    }
    const again = lockFolder(folder, 'third');
    expect(again.takenOverFrom).toBeNull();
    again.release();
    again.release();
  });

  it('reports the holder file a dead process left', () => {
    const folder = join(scratch, 'lock-stale');
    mkdirSync(folder);
    const stale: LockHolder = { pid: 999_999_999, host: 'elsewhere', startedAt: '2026-01-02T03:04:05.000Z', command: 'moebench run smoke' };
    writeFileSync(join(folder, LOCK_HOLDER_FILE), JSON.stringify(stale));
    const lock = lockFolder(folder, 'new holder');
    expect(lock.takenOverFrom).toEqual(stale);
    const written = JSON.parse(readFileSync(join(folder, LOCK_HOLDER_FILE), 'utf8')) as LockHolder;
    expect(written.pid).toBe(process.pid);
    expect(written.command).toBe('new holder');
    lock.release();
  });
});

describe('invocation', () => {
  it('names pnpm when the checkout script runs moebench', () => {
    const saved = process.env.npm_lifecycle_event;
    try {
      process.env.npm_lifecycle_event = 'moebench';
      expect(invocation()).toBe('pnpm moebench');
      process.env.npm_lifecycle_event = 'test';
      expect(invocation()).toBe('moebench');
      delete process.env.npm_lifecycle_event;
      expect(invocation()).toBe('moebench');
    } finally {
      if (saved === undefined) delete process.env.npm_lifecycle_event;
      else process.env.npm_lifecycle_event = saved;
    }
  });
});

describe('wasm memory check', () => {
  it('rejects a model too large for the wasm heap before loading data', async () => {
    const suite = join(scratch, 'huge.yaml');
    writeFileSync(
      suite,
      [
        'name: huge',
        'backend: wasm',
        'data: { corpus: sotu, tokenizer: byte, seqLen: 16, batchSize: 4 }',
        'training: { budget: { unit: steps, amount: 2 }, evaluationInterval: { unit: steps, amount: 2 } }',
        'model: { dModel: 4096, layers: 48, heads: 8 }',
        'models:',
        '  - architecture: transformer',
        '',
      ].join('\n'),
    );
    const runDir = join(scratch, 'huge-run');
    const result = await runCli(['run', suite, '--out', runDir]);
    expect(result.code).toBe(1);
    // 48 blocks of 12 d^2 plus embeddings and positions: about 9.67G parameters, 16 bytes each.
    expect(result.stderr).toMatch(/Model "transformer" has 9\.\d\dG parameters: its weights, gradients and AdamW moments alone need 1\d\d\.\d GiB, more than the 4 GiB the wasm backend can use\./);
    expect(result.stdout).not.toContain('Data: ');
  });
});

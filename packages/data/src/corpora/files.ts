import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { DOCUMENT_SEPARATOR, makeSplitFromText, share, type Corpus, type CorpusDocument, type SplitFractions } from '../corpus.js';
import { DataError } from '../errors.js';
import { decodeTextFile } from '../text.js';

const ALLOWED_PATHS = 'existing UTF-8 text files or folders that contain some';

/**
 * Reads the user's text files: each path is a file, or a folder searched recursively (names that
 * start with `.` are skipped) whose files are taken in sorted path order. Every file must be
 * non-empty UTF-8 text; anything else raises a DataError naming `paths[i]` before any work starts.
 */
export function readTextFiles(paths: unknown): CorpusDocument[] {
  if (!Array.isArray(paths) || paths.length === 0) {
    throw new DataError('paths', paths, 'must list at least one file or folder for corpus "files"', ALLOWED_PATHS);
  }

  const documents: CorpusDocument[] = [];
  paths.forEach((path: unknown, index) => {
    const field = `paths[${index}]`;
    if (typeof path !== 'string' || path.trim() === '') {
      throw new DataError(field, path, 'is empty', ALLOWED_PATHS);
    }
    const stats = statOrThrow(path, field);
    const files = stats.isDirectory() ? listFiles(path) : [path];
    if (files.length === 0) {
      throw new DataError(field, path, 'is a folder with no files', ALLOWED_PATHS);
    }
    for (const file of files) {
      const text = decodeTextFile(readFileSync(file), field, file);
      if (text.trim() === '') throw new DataError(field, file, 'is an empty file', ALLOWED_PATHS);
      documents.push({ id: file, text });
    }
  });
  return documents;
}

function statOrThrow(path: string, field: string): Stats {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (error as Error).message})`;
    throw new DataError(field, path, problem, ALLOWED_PATHS);
  }
}

function listFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) found.push(full);
    }
  };
  walk(dir);
  return found.sort((a, b) => (relative(dir, a) < relative(dir, b) ? -1 : 1));
}

/**
 * Cuts `text` at byte fractions: train is the first (1 - validation - test) of the UTF-8 bytes,
 * validation the next `validation`, test the rest. Each cut moves forward to the start of the next
 * line when the split has a line break after the cut point, and otherwise to the next character
 * boundary. So no character is cut in two, and no line is where the split has a line break.
 */
export function cutByByteFraction(text: string, fractions: SplitFractions): [string, string, string] {
  const bytes = Buffer.from(text, 'utf8');
  const trainEnd = Math.floor((1 - fractions.validation - fractions.test) * bytes.length);
  const validationEnd = Math.floor((1 - fractions.test) * bytes.length);
  const first = snapCut(bytes, trainEnd, validationEnd);
  const second = snapCut(bytes, Math.max(validationEnd, first), bytes.length);
  return [
    bytes.subarray(0, first).toString('utf8'),
    bytes.subarray(first, second).toString('utf8'),
    bytes.subarray(second).toString('utf8'),
  ];
}

/**
 * Moves `cut` to the next line start (a cut already at one stays) if that is before `limit`,
 * else to the next character boundary.
 */
function snapCut(bytes: Buffer, cut: number, limit: number): number {
  if (cut === 0) return 0;
  const newline = bytes.indexOf(0x0a, cut - 1);
  if (newline >= 0 && newline + 1 < limit) return newline + 1;
  let position = cut;
  while (position < bytes.length && (bytes[position] & 0xc0) === 0x80) position++;
  return position;
}

/**
 * Loads a user's text files as one corpus. The files, in the order given and folders in sorted path
 * order, are joined by a blank line and cut by byte fractions (see `cutByByteFraction`). A single
 * file is therefore split too, and validation and test are the end of the text.
 */
export function loadFiles(paths: unknown, fractions: SplitFractions): Corpus {
  const documents = readTextFiles(paths);
  const text = documents.map((document) => document.text).join(DOCUMENT_SEPARATOR);
  const [train, validation, test] = cutByByteFraction(text, fractions);

  // Byte offsets of each document inside the joined text, to list which documents each split touches.
  const separatorBytes = Buffer.byteLength(DOCUMENT_SEPARATOR);
  let start = 0;
  const spans = documents.map((document) => {
    const end = start + Buffer.byteLength(document.text);
    const span = { id: document.id, start, end };
    start = end + separatorBytes;
    return span;
  });
  const trainBytes = Buffer.byteLength(train);
  const validationBytes = Buffer.byteLength(validation);
  const touching = (from: number, to: number): string[] =>
    spans.filter((span) => span.start < to && span.end > from).map((span) => span.id);

  return {
    name: 'files',
    source: (paths as string[]).map((path) => resolve(path)).join(', '),
    splitRule:
      `Files joined in order (folders sorted by path), cut by UTF-8 bytes at ${share(1 - fractions.validation - fractions.test)} ` +
      `and ${share(1 - fractions.test)}, each cut moved to the next line start: train, validation, test.`,
    train: makeSplitFromText('train', train, touching(0, trainBytes)),
    validation: makeSplitFromText('validation', validation, touching(trainBytes, trainBytes + validationBytes)),
    test: makeSplitFromText('test', test, touching(trainBytes + validationBytes, Infinity)),
  };
}

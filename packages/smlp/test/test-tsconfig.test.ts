import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const testDir = resolve(new URL('.', import.meta.url).pathname);
const repoRoot = resolve(testDir, '../../..');

function readConfig(path: string): ts.ParsedCommandLine {
  const parsed = ts.getParsedCommandLineOfConfigFile(path, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, ' '));
    },
  });
  if (parsed === undefined) throw new Error(`${path} could not be parsed`);
  return parsed;
}

// `pnpm test` type-checks only what `tsc -b tsconfig.json` builds, so these checks keep the sMLP tests in that build.
describe('sMLP test tsconfig', () => {
  it('lists every test source file', () => {
    const config = readConfig(join(testDir, 'tsconfig.json'));
    const listed = new Set(config.fileNames.map((file) => resolve(file)));
    const sources = readdirSync(testDir).filter((name) => name.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(0);
    for (const name of sources) expect(listed, name).toContain(join(testDir, name));
  });

  it('is built by the root tsconfig', () => {
    const root = readConfig(join(repoRoot, 'tsconfig.json'));
    const referenced = (root.projectReferences ?? []).map((reference) => resolve(ts.resolveProjectReferencePath(reference)));
    expect(referenced).toContain(join(repoRoot, 'packages/smlp/test/tsconfig.json'));
  });

  it('checks types without emitting', () => {
    const config = readConfig(join(testDir, 'tsconfig.json'));
    expect(config.options.strict).toBe(true);
    expect(config.options.noEmit).toBe(true);
    expect(config.errors).toEqual([]);
  });
});

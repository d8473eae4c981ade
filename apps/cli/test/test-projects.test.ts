/**
 * Checks that `tsc -b tsconfig.json`, the first step of `pnpm test`, type-checks every test file.
 * Vitest strips types without checking them, so a test file outside the build hides its type errors.
 * Every test folder that vitest runs (packages/<name>/test, apps/<name>/test, benchmarks/test, the
 * include list of vitest.config.ts) needs a tsconfig.json of its own that the root tsconfig references.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** The compiler options that `strict: true` turns on, each of which a config could still set to false. */
const STRICT_FAMILY = [
  'alwaysStrict',
  'noImplicitAny',
  'noImplicitThis',
  'strictBindCallApply',
  'strictBuiltinIteratorReturn',
  'strictFunctionTypes',
  'strictNullChecks',
  'strictPropertyInitialization',
  'useUnknownInCatchVariables',
] as const;

/** Dependency and build-output folders that the repository walk skips, along with dot folders such as .git. */
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist']);

function readConfig(path: string): ts.ParsedCommandLine {
  const parsed = ts.getParsedCommandLineOfConfigFile(path, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(`${path}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`);
    },
  });
  if (parsed === undefined) throw new Error(`${path} could not be parsed`);
  return parsed;
}

/** Returns the test folders vitest runs, relative to the repository root. */
function findTestFolders(): string[] {
  const folders: string[] = [];
  for (const parent of ['packages', 'apps']) {
    for (const entry of readdirSync(join(repoRoot, parent), { withFileTypes: true })) {
      if (entry.isDirectory() && existsSync(join(repoRoot, parent, entry.name, 'test'))) folders.push(`${parent}/${entry.name}/test`);
    }
  }
  if (existsSync(join(repoRoot, 'benchmarks/test'))) folders.push('benchmarks/test');
  return folders;
}

/** Returns the absolute paths of the files under `folder` whose names match `pattern`, in every subfolder. */
function findFiles(folder: string, pattern: RegExp): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name) && !entry.name.startsWith('.')) found.push(...findFiles(path, pattern));
    } else if (pattern.test(entry.name)) {
      found.push(path);
    }
  }
  return found;
}

const TYPESCRIPT_FILE = /\.[cm]?ts$/;
const testFolders = findTestFolders();
const rootReferences = (readConfig(join(repoRoot, 'tsconfig.json')).projectReferences ?? []).map((reference) =>
  resolve(ts.resolveProjectReferencePath(reference)),
);

describe('test projects', () => {
  it('cover every folder that contains test files', () => {
    expect(testFolders).toContain('packages/smlp/test');
    expect(testFolders).toContain('apps/cli/test');
    expect(testFolders).toContain('benchmarks/test');

    const testFiles = findFiles(repoRoot, /\.test\.[cm]?ts$/).map((file) => relative(repoRoot, file));
    expect(testFiles.length).toBeGreaterThan(testFolders.length);
    for (const file of testFiles) {
      const folder = testFolders.find((candidate) => file.startsWith(`${candidate}/`));
      expect(folder, `${file} is outside every test folder`).toBeDefined();
    }
  });

  it('list every testing/ helper', () => {
    const listed = new Set(testFolders.flatMap((folder) => readConfig(join(repoRoot, folder, 'tsconfig.json')).fileNames.map((file) => resolve(file))));
    const helpers = findFiles(join(repoRoot, 'testing'), TYPESCRIPT_FILE);
    expect(helpers.length).toBeGreaterThan(0);
    for (const helper of helpers) expect(listed, relative(repoRoot, helper)).toContain(helper);
  });

  describe.each(testFolders)('%s', (folder) => {
    const configPath = join(repoRoot, folder, 'tsconfig.json');

    it('has a tsconfig.json without errors', () => {
      expect(existsSync(configPath), `${folder}/tsconfig.json is missing`).toBe(true);
      expect(readConfig(configPath).errors).toEqual([]);
    });

    it('lists every TypeScript file of the folder', () => {
      const listed = new Set(readConfig(configPath).fileNames.map((file) => resolve(file)));
      const sources = findFiles(join(repoRoot, folder), TYPESCRIPT_FILE);
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) expect(listed, relative(repoRoot, source)).toContain(source);
    });

    it('is strict and emits nothing', () => {
      const { options } = readConfig(configPath);
      expect(options.strict).toBe(true);
      for (const flag of STRICT_FAMILY) expect(options[flag], flag).not.toBe(false);
      expect(options.noEmit).toBe(true);
    });

    it('is referenced from the root tsconfig', () => {
      expect(rootReferences).toContain(configPath);
    });
  });
});

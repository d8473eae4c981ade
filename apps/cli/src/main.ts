#!/usr/bin/env node
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BACKEND_NAMES, initBackend } from '@moebench/backend';
import { ARCHITECTURES } from '@moebench/models';
import { isFolderLocked } from '@moebench/results';
import { parseCommandLine, USAGE, UsageError, type Command } from './args.js';
import { collectEnvironment } from './environment.js';
import { prepareWritableFolder } from './folders.js';
import { writeRunReport } from './report.js';
import { runCommand } from './run.js';
import { BUILTIN_SUITES, loadSuite, resolveSuitePath } from './suite.js';

async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\nRun "moebench help" for the commands and options.\n`);
      return 2;
    }
    throw error;
  }
  try {
    return await runParsed(command);
  } catch (error) {
    // A value that only a later check can reject (a suite name, an --only name) is still a usage error.
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\nRun "moebench help" for the commands and options.\n`);
      return 2;
    }
    process.stderr.write(`moebench ${command.command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function runParsed(command: Command): Promise<number> {
  switch (command.command) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`${readPackageVersion()}\n`);
      return 0;
    case 'list':
      printList();
      return 0;
    case 'env': {
      await initBackend(command.backend ?? 'auto');
      process.stdout.write(`${JSON.stringify(await collectEnvironment(), null, 2)}\n`);
      return 0;
    }
    case 'report': {
      const storePath = findStore(command.target);
      const outDir = resolve(command.out ?? join(dirname(storePath), 'report'));
      // Checked before the report is built, so that a bad --out costs no work.
      prepareWritableFolder(outDir, 'the report folder', 'choose another --out');
      // A run still marked running whose folder no process locks was stopped without finishing (killed, or its machine went down).
      const processAlive = isFolderLocked(dirname(storePath));
      const written = await writeRunReport(storePath, undefined, outDir, (line) => process.stdout.write(`${line}\n`), processAlive);
      process.stdout.write(`Report: ${written}\n`);
      return 0;
    }
    case 'run': {
      const output = process.stderr.isTTY ? process.stderr : process.stdout;
      return await runCommand(command, { write: (text) => output.write(text), isTTY: output.isTTY === true, columns: output.columns });
    }
  }
}

function printList(): void {
  const lines = ['Architectures:', ...ARCHITECTURES.map((name) => `  ${name}`), '', 'Suites:'];
  for (const name of BUILTIN_SUITES) {
    const suite = loadSuite(resolveSuitePath(name));
    lines.push(`  ${name.padEnd(6)} ${suite.description}`);
  }
  lines.push('', `Backends: ${BACKEND_NAMES.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

// A run folder contains store.sqlite; a file path is taken as the store itself.
function findStore(target: string): string {
  const path = resolve(target);
  if (!existsSync(path)) throw new Error(`${target} not found; give a run folder or its store.sqlite file.`);
  if (statSync(path).isDirectory()) {
    const store = join(path, 'store.sqlite');
    if (!existsSync(store)) throw new Error(`${target} contains no store.sqlite, so it is not a run folder.`);
    return store;
  }
  return path;
}

function readPackageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return `moebench ${manifest.version ?? 'unknown'}`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`moebench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);

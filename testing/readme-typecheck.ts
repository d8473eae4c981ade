/**
 * Type-checks the TypeScript examples of a package README, as a user's strict NodeNext project would
 * compile them.
 *
 * Every ```ts block is written to a temporary module next to the README and compiled with the
 * workspace's compiler options (strict, NodeNext), `@moebench/*` mapped to each package's
 * src/index.ts so that the check never reads a stale build. The function returns one line per
 * error found in the examples (errors in the packages themselves are left to `tsc -b`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');

export function typecheckReadmeExamples(readmePath: string): string[] {
  const text = readFileSync(readmePath, 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
  if (blocks.length === 0) throw new Error(`${readmePath} has no \`\`\`ts example`);

  const files = blocks.map((_, index) => join(dirname(readmePath), `.readme-typecheck-${index}-${process.pid}.mts`));
  try {
    blocks.forEach((block, index) => writeFileSync(files[index], `${block}\nexport {};\n`));
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2023.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      esModuleInterop: true,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      paths: { '@moebench/*': [join(ROOT, 'packages', '*', 'src', 'index.ts')] },
    });
    const mine = new Set(files.map((file) => resolve(file)));
    return ts
      .getPreEmitDiagnostics(program)
      .filter((diagnostic) => diagnostic.file !== undefined && mine.has(resolve(diagnostic.file.fileName)))
      .map((diagnostic) => {
        const example = files.indexOf(diagnostic.file!.fileName) + 1;
        const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        return `example ${example}, line ${line + 1}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
      });
  } finally {
    for (const file of files) rmSync(file, { force: true });
  }
}

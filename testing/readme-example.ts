/**
 * Runs the TypeScript examples of a package README as a test.
 *
 * Every ```ts block of the README is written to a temporary module next to the README and imported
 * (vitest resolves `@moebench/*` to the workspace sources). A `console.log(...)` line followed by a
 * comment `// => expected` is checked: the printed text must equal `expected`. The function returns
 * the number of checked lines, so a test can assert that the example checks something.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { format } from 'node:util';

/** Numbers each written module, so that a second call in one process imports a new module, not a cached one. */
let modulesWritten = 0;

export async function runReadmeExamples(readmePath: string): Promise<{ checked: number; mismatches: string[] }> {
  const text = readFileSync(readmePath, 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
  if (blocks.length === 0) throw new Error(`${readmePath} has no \`\`\`ts example`);

  let checked = 0;
  const mismatches: string[] = [];
  for (const [index, block] of blocks.entries()) {
    const expected: string[] = [];
    const source = block
      .split('\n')
      .map((line) => {
        const match = /^(\s*)console\.log\((.*)\);?\s*\/\/ => (.*)$/.exec(line);
        if (!match) return line;
        expected.push(match[3].trim());
        return `${match[1]}__readmeLog(${match[2]});`;
      })
      .join('\n');

    const printed: string[] = [];
    (globalThis as Record<string, unknown>).__readmeLog = (...args: unknown[]) => printed.push(format(...args));
    modulesWritten++;
    const file = join(dirname(readmePath), `.readme-example-${index}-${process.pid}-${modulesWritten}.ts`);
    writeFileSync(file, `declare const __readmeLog: (...args: unknown[]) => void;\n${source}\nexport {};\n`);
    try {
      await import(/* @vite-ignore */ file);
    } finally {
      rmSync(file, { force: true });
    }

    expected.forEach((want, line) => {
      checked++;
      const got = printed[line];
      if (got !== want) mismatches.push(`example ${index + 1}, check ${line + 1}: expected ${want}, printed ${got}`);
    });
  }
  return { checked, mismatches };
}

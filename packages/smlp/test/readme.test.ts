import { describe, expect, it } from 'vitest';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { typecheckReadmeExamples } from '../../../testing/readme-typecheck.js';

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(7);
  });
});

describe('README as TypeScript', () => {
  it('compiles the usage example under strict NodeNext settings', () => {
    expect(typecheckReadmeExamples(new URL('../README.md', import.meta.url).pathname)).toEqual([]);
  }, 60_000);
});

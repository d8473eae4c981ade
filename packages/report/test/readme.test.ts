import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runReadmeExamples } from '../../../testing/readme-example.js';

describe('README', () => {
  it('runs its example and prints what it says', async () => {
    const { checked, mismatches } = await runReadmeExamples(fileURLToPath(new URL('../README.md', import.meta.url)));
    expect(mismatches).toEqual([]);
    expect(checked).toBe(4);
  });
});

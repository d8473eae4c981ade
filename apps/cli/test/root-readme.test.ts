import { describe, expect, it } from 'vitest';
import { runReadmeExamples } from '../../../testing/readme-example.js';

describe('root README', () => {
  it('runs the Switch layer example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../../../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(2);
  });
});

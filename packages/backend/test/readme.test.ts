import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { typecheckReadmeExamples } from '../../../testing/readme-typecheck.js';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const SWITCHES = ['MOEBENCH_STOCK_KERNELS', 'MOEBENCH_NATIVE_KERNELS', 'MOEBENCH_FUSED_KERNELS'] as const;
const savedEnv = Object.fromEntries(SWITCHES.map((name) => [name, process.env[name]]));

describe('README', () => {
  afterEach(() => {
    for (const name of SWITCHES) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
  });

  // initBackend reads the switches on every call, so setting them here reaches the example.
  it.each([
    ['the default kernels', {}],
    ['MOEBENCH_STOCK_KERNELS=1', { MOEBENCH_STOCK_KERNELS: '1' }],
    ['MOEBENCH_NATIVE_KERNELS=0', { MOEBENCH_NATIVE_KERNELS: '0' }],
    ['MOEBENCH_FUSED_KERNELS=0', { MOEBENCH_FUSED_KERNELS: '0' }],
  ])('example prints what it says under %s', async (_, settings: Partial<Record<(typeof SWITCHES)[number], string>>) => {
    for (const name of SWITCHES) {
      const value = settings[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    const { checked, mismatches } = await runReadmeExamples(README);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(7);
  });

  it('example compiles as strict TypeScript', () => {
    expect(typecheckReadmeExamples(README)).toEqual([]);
  });
});

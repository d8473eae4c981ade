import { afterEach, describe, expect, it } from 'vitest';
import { defaultNativeThreads, nativeThreadsSetting, switchSetting } from '../src/index.js';

const VARIABLES = ['MOEBENCH_TEST_SWITCH', 'MOEBENCH_NATIVE_THREADS'] as const;
const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));

afterEach(() => {
  for (const name of VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

describe('switchSetting', () => {
  it('reads 1 and 0', () => {
    process.env.MOEBENCH_TEST_SWITCH = '1';
    expect(switchSetting('MOEBENCH_TEST_SWITCH', false)).toBe(true);
    process.env.MOEBENCH_TEST_SWITCH = '0';
    expect(switchSetting('MOEBENCH_TEST_SWITCH', true)).toBe(false);
  });

  it('keeps the default when unset or empty', () => {
    delete process.env.MOEBENCH_TEST_SWITCH;
    expect(switchSetting('MOEBENCH_TEST_SWITCH', true)).toBe(true);
    process.env.MOEBENCH_TEST_SWITCH = '';
    expect(switchSetting('MOEBENCH_TEST_SWITCH', false)).toBe(false);
  });

  it.each(['false', 'true', 'no', ' 1', '01'])('rejects %j, naming the variable', (value) => {
    process.env.MOEBENCH_TEST_SWITCH = value;
    expect(() => switchSetting('MOEBENCH_TEST_SWITCH', true)).toThrow(`MOEBENCH_TEST_SWITCH must be 0 or 1 (or unset), received "${value}"`);
  });
});

describe('nativeThreadsSetting', () => {
  it('reads whole numbers from 1 to 64', () => {
    process.env.MOEBENCH_NATIVE_THREADS = '1';
    expect(nativeThreadsSetting()).toBe(1);
    process.env.MOEBENCH_NATIVE_THREADS = '64';
    expect(nativeThreadsSetting()).toBe(64);
  });

  it('defaults to one per core', () => {
    delete process.env.MOEBENCH_NATIVE_THREADS;
    expect(nativeThreadsSetting()).toBe(defaultNativeThreads());
    process.env.MOEBENCH_NATIVE_THREADS = '';
    expect(nativeThreadsSetting()).toBe(defaultNativeThreads());
  });

  it.each(['0', '65', 'abc', '1.5', '1e1', '0x2', ' 2', '-1'])('rejects %j', (value) => {
    process.env.MOEBENCH_NATIVE_THREADS = value;
    expect(() => nativeThreadsSetting()).toThrow(`MOEBENCH_NATIVE_THREADS must be an integer from 1 to 64, received "${value}"`);
  });
});

import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/args.js';

describe('parseCommandLine', () => {
  it('defaults run to no suite and no overrides', () => {
    expect(parseCommandLine(['run'])).toEqual({ command: 'run', suite: null, out: null, backend: null, seed: null, only: null, resume: null });
  });

  it('reads every run option', () => {
    expect(parseCommandLine(['run', 'smoke', '--out', 'x', '--backend', 'cpu', '--seed', '7', '--only', 'smlp, switch'])).toEqual({
      command: 'run',
      suite: 'smoke',
      out: 'x',
      backend: 'cpu',
      seed: 7,
      only: ['smlp', 'switch'],
      resume: null,
    });
  });

  const errors: Array<[string[], string]> = [
    [['train'], 'Unknown command "train". Valid commands: run, list, env, report, help, version.'],
    [['run', '--epochs', '3'], 'moebench run: unknown option --epochs. Valid options: --out, --backend, --seed, --only, --resume.'],
    [['run', '--seed=-1'], 'moebench run: --seed must be an integer >= 0, received "-1".'],
    [['run', '--seed', '1.5'], 'moebench run: --seed must be an integer >= 0, received "1.5".'],
    [['run', '--backend', 'webgl'], 'moebench run: --backend must be one of auto, wasm, cpu, tensorflow, received "webgl".'],
    [['run', '--only', 'smlp,,switch'], 'moebench run: --only takes a comma-separated list of model names or architectures, received "smlp,,switch".'],
    [['run', 'smoke', 'quick'], 'moebench run: unexpected argument "quick"; it takes at most one argument.'],
    [['run', 'smoke', '--resume', 'runs/a'], 'moebench run: --resume continues the suite saved in runs/a; name no suite with it (received "smoke").'],
    [['run', '--resume', 'runs/a', '--seed', '2'], 'moebench run: --resume keeps the options of the interrupted run'],
    [['run', '--out', ''], 'moebench run: --out needs a non-empty path, received "".'],
    [['report', 'runs/a', '--out', ' '], 'moebench report: --out needs a non-empty path, received " ".'],
    [['run', '--out'], "moebench run: option '--out <value>' argument missing"],
    [['list', '--all'], 'moebench list: unknown option --all. It takes no options.'],
    [['report'], 'moebench report: missing the run folder or store.sqlite file to report on.'],
    [['env', '--backend', 'gpu'], 'moebench env: --backend must be one of auto, wasm, cpu, tensorflow, received "gpu".'],
  ];
  for (const [argv, message] of errors) {
    it(`rejects ${argv.join(' ')}`, () => {
      expect(() => parseCommandLine(argv)).toThrow(message);
    });
  }
});

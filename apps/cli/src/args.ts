import { parseArgs } from 'node:util';
import { BACKEND_NAMES } from '@moebench/backend';

/** The commands `moebench` accepts. */
export const COMMANDS = ['run', 'list', 'env', 'report', 'help', 'version'] as const;

/** A parsed command line. */
export type Command =
  | { command: 'run'; suite: string | null; out: string | null; backend: string | null; seed: number | null; only: string[] | null; resume: string | null }
  | { command: 'list' }
  | { command: 'env'; backend: string | null }
  | { command: 'report'; target: string; out: string | null }
  | { command: 'help' }
  | { command: 'version' };

/** Invalid command line; the message names what was wrong and what is allowed. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Usage text printed by `moebench help` and after a usage error. */
export const USAGE = `Usage: moebench <command> [options]

Commands:
  run [suite]          Train every model of a suite and write the run store and report.
                       suite: smoke, quick (default), paper, or a path to a .yaml/.json suite file.
  list                 List the architectures and the built-in suites.
  env                  Print the backend, hardware and software versions a run would use.
  report <run>         Write the report of a run folder or a store.sqlite file.
  help                 Print this text (also: --help or -h after any command).
  version              Print the version of moebench (also: --version).

Options of run:
  --out <dir>          Run folder (store.sqlite, checkpoints/, report/). Default: runs/<suite>-<UTC time>/.
  --backend <name>     tfjs backend: ${BACKEND_NAMES.join(', ')}. Default: the suite's backend.
  --seed <n>           Train with this one seed (an integer >= 0) instead of the suite's seeds.
  --only <a,b,...>     Train only these models, by suite name or architecture.
  --resume <dir>       Continue an interrupted run folder: finished models are kept, the others
                       continue from their last checkpoint. Takes no suite argument.
Options of env:
  --backend <name>     Backend to start and describe. Default: auto.
Options of report:
  --out <dir>          Folder of the report. Default: report/ next to the store.
`;

const RUN_OPTIONS = {
  out: { type: 'string' },
  backend: { type: 'string' },
  seed: { type: 'string' },
  only: { type: 'string' },
  resume: { type: 'string' },
} as const;

/** Parses `argv` (without the node and script paths) into a command, rejecting unknown flags and bad values. */
export function parseCommandLine(argv: string[]): Command {
  // `--help` and `--version` work after any command, as users try them there first.
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return { command: 'help' };
  if (argv.includes('--version')) return { command: 'version' };
  const [command = 'help', ...rest] = argv;
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`Unknown command "${command}". Valid commands: ${COMMANDS.join(', ')}.`);
  }

  switch (command) {
    case 'run': {
      const { values, positionals } = parse(command, rest, RUN_OPTIONS, 1);
      const seed = values.seed === undefined ? null : parseSeed(values.seed);
      const backend = values.backend === undefined ? null : parseBackend(command, values.backend);
      const only = values.only === undefined ? null : parseOnly(values.only);
      const resume = values.resume ?? null;
      if (resume !== null && positionals.length > 0) {
        throw new UsageError(`moebench run: --resume continues the suite saved in ${resume}; name no suite with it (received "${positionals[0]}").`);
      }
      if (resume !== null && (seed !== null || only !== null || values.out !== undefined)) {
        throw new UsageError('moebench run: --resume keeps the options of the interrupted run; --out, --seed and --only cannot be combined with it.');
      }
      return { command, suite: positionals[0] ?? null, out: nonEmpty(command, '--out', values.out), backend, seed, only, resume: nonEmpty(command, '--resume', values.resume) };
    }
    case 'list':
      parse(command, rest, {}, 0);
      return { command };
    case 'env': {
      const { values } = parse(command, rest, { backend: { type: 'string' } }, 0);
      return { command, backend: values.backend === undefined ? null : parseBackend(command, values.backend) };
    }
    case 'report': {
      const { values, positionals } = parse(command, rest, { out: { type: 'string' } }, 1);
      if (positionals.length === 0) throw new UsageError('moebench report: missing the run folder or store.sqlite file to report on.');
      return { command, target: positionals[0], out: nonEmpty(command, '--out', values.out) };
    }
    case 'version':
      parse(command, rest, {}, 0);
      return { command };
    default:
      return { command: 'help' };
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;

function parse<T extends OptionSpec>(command: string, args: string[], options: T, maxPositionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(args, options), options, strict: true, allowPositionals: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const names = Object.keys(options).map((name) => `--${name}`);
    const valid = names.length > 0 ? `Valid options: ${names.join(', ')}.` : 'It takes no options.';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /'([^']+)'/.exec((error as Error).message)?.[1] ?? 'an option';
      throw new UsageError(`moebench ${command}: unknown option ${option}. ${valid}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(`moebench ${command}: ${(error as Error).message.replace(/^Option /, 'option ')}`);
    }
    throw new UsageError(`moebench ${command}: ${(error as Error).message}`);
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals.slice(maxPositionals).join(' ');
    let takes = `it takes at most ${maxPositionals} arguments`;
    if (maxPositionals === 0) takes = 'it takes no arguments';
    if (maxPositionals === 1) takes = 'it takes at most one argument';
    throw new UsageError(`moebench ${command}: unexpected argument${parsed.positionals.length - maxPositionals > 1 ? 's' : ''} "${extra}"; ${takes}.`);
  }
  return parsed as { values: { [K in keyof T]?: string }; positionals: string[] };
}

// parseArgs reads a value that starts with "-" as an ambiguous option, so `--seed -1` would fail
// with its own text. A negative number after a string option is joined to it (`--seed=-1`), and
// the option's own check then rejects it with the allowed values.
function joinNegativeValues(args: string[], options: OptionSpec): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : null;
    const next = args[i + 1];
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${args[i]}=${next}`);
      i += 1;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
}

function parseSeed(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`moebench run: --seed must be an integer >= 0, received "${text}".`);
  }
  return Number(text);
}

function parseBackend(command: string, text: string): string {
  if (!(BACKEND_NAMES as readonly string[]).includes(text)) {
    throw new UsageError(`moebench ${command}: --backend must be one of ${BACKEND_NAMES.join(', ')}, received "${text}".`);
  }
  return text;
}

function parseOnly(text: string): string[] {
  const names = text.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) {
    throw new UsageError(`moebench run: --only takes a comma-separated list of model names or architectures, received "${text}".`);
  }
  return names;
}

function nonEmpty(command: string, flag: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.trim() === '') throw new UsageError(`moebench ${command}: ${flag} needs a non-empty path, received "${value}".`);
  return value;
}

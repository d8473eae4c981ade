import { DEFAULT_PEER_VARIANTS, PEER_VARIANTS, VARIANT_NAMES, type VariantName } from './variants.js';

/** Parsed command line of `pnpm bench`. */
export interface BenchArgs {
  /** Substrings of case names to run (`--filter`, repeatable or comma-separated). Default: all cases. */
  filters: string[];
  /**
   * Variants to run (`--variants`). Default: all (wasm-native and tensorflow are skipped when
   * unavailable); with `--peer`, `DEFAULT_PEER_VARIANTS`.
   */
  variants: VariantName[];
  /** Path of the JSON file (`--out`). Default: benchmarks/results/<name>.json. */
  out?: string;
  /** Run name (`--name`). Default: `bench-<UTC date and time>`. */
  name?: string;
  /** Run the PyTorch peer comparison instead of the registered cases (`--peer`). Default: false. */
  peer: boolean;
  /** Only list the cases (`--list`). */
  list: boolean;
  /** Only print the usage (`--help`). */
  help: boolean;
}

/** Usage text of `pnpm bench`. */
export const USAGE = `Usage: pnpm bench [--filter <text>]... [--variants <list>] [--name <name>] [--out <file.json>] [--list]
       pnpm bench --peer [--variants <list>] [--name <name>] [--out <file.json>]

  --filter <text>    run the cases whose name contains <text> (repeatable, or comma-separated); default: all
  --variants <list>  comma-separated, from: ${VARIANT_NAMES.join(', ')}; default: all
  --name <name>      run name; the JSON goes to benchmarks/results/<name>.json; default: bench-<UTC time>
  --out <file.json>  write the JSON here instead
  --peer             compare dense-ffn, switch-layer and the seven train-step-* cases with PyTorch
                     (the system's python3-torch); --variants from: ${PEER_VARIANTS.join(', ')};
                     default: ${DEFAULT_PEER_VARIANTS.join(', ')}; run name default: peer-<UTC time>
  --list             list the registered cases and exit
  --help             print this text and exit`;

/** Parses `pnpm bench` arguments. Throws on an unknown flag or a bad value, saying what is allowed. */
export function parseArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { filters: [], variants: [...VARIANT_NAMES], peer: false, list: false, help: false };
  // Checked after the loop, because `--peer` may follow `--variants` and narrows what is allowed.
  let variantsText: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value. ${USAGE}`);
      i++;
      return next;
    };
    switch (flag) {
      case '--':
        break;
      case '--filter':
        args.filters.push(...splitList(value()));
        break;
      case '--variants':
        variantsText = value();
        break;
      case '--out': {
        const out = value();
        if (!out.endsWith('.json')) throw new Error(`--out must name a .json file, received "${out}"`);
        args.out = out;
        break;
      }
      case '--name': {
        const name = value();
        if (!/^[A-Za-z0-9._-]+$/.test(name)) {
          throw new Error(`--name may hold letters, digits, ".", "_" and "-" only, received "${name}"`);
        }
        args.name = name;
        break;
      }
      case '--peer':
        args.peer = true;
        break;
      case '--list':
        args.list = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new Error(`Unknown argument "${flag}". ${USAGE}`);
    }
  }
  if (args.peer) {
    if (args.filters.length > 0) {
      throw new Error('--filter does not apply to --peer, which always runs dense-ffn, switch-layer and the seven train-step-* cases');
    }
    if (args.list) throw new Error('--list and --peer exclude each other: --list only lists the registered cases');
    args.variants = [...DEFAULT_PEER_VARIANTS];
  }
  if (variantsText !== undefined) args.variants = parseVariants(variantsText, args.peer);
  return args;
}

/** Parses the `--variants` list against the variants the mode can run: `PEER_VARIANTS` with `--peer`. */
function parseVariants(text: string, peer: boolean): VariantName[] {
  const flag = peer ? '--variants with --peer' : '--variants';
  const allowed: readonly VariantName[] = peer ? PEER_VARIANTS : VARIANT_NAMES;
  const names = splitList(text);
  if (names.length === 0) throw new Error(`${flag}: empty list "${text}". Allowed: ${allowed.join(', ')}`);
  for (const name of names) {
    if ((allowed as readonly string[]).includes(name)) continue;
    const problem = (VARIANT_NAMES as readonly string[]).includes(name)
      ? `variant "${name}" does not run in the peer comparison`
      : `unknown variant "${name}"`;
    throw new Error(`${flag}: ${problem}. Allowed: ${allowed.join(', ')}`);
  }
  return names as VariantName[];
}

function splitList(text: string): string[] {
  return text.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
}

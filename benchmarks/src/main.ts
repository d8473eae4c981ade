/**
 * `pnpm bench`: runs the registered bench cases on each backend variant, prints one table of
 * tokens/s and GFLOP/s, and writes the same figures with the backend facts to a JSON file.
 * `pnpm bench --peer` runs the PyTorch peer comparison (./cases/peer.ts) instead.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeThreadsSetting, switchSetting } from '@moebench/backend';
import { parseArgs, USAGE } from './args.js';
import './cases/index.js';
import { formatPeerTable, PEER_CASES, runPeerBenchmark } from './cases/peer.js';
import { listCases, selectCases } from './registry.js';
import { formatTable, type BenchReport } from './report.js';
import { runVariant, type VariantRun } from './run.js';
import { DEFAULT_CASE_VARIANTS, VARIANTS, type PeerVariant } from './variants.js';

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) {
    console.log(USAGE);
    return;
  }
  if (args.list) {
    for (const benchCase of listCases()) console.log(`${benchCase.name}: ${benchCase.description}`);
    return;
  }
  // Settings that would otherwise skip every moebench row, or lose the results, fail before any work.
  nativeThreadsSetting();
  for (const [variable, fallback] of KERNEL_SWITCHES) switchSetting(variable, fallback);
  const startedAt = new Date();
  const name = args.name ?? `${args.peer ? 'peer' : 'bench'}-${startedAt.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
  const out = args.out !== undefined ? resolve(args.out) : resolve(RESULTS_DIR, `${name}.json`);
  checkOutput(out, args.out !== undefined ? '--out' : '--name');
  if (args.peer) {
    // parseArgs checked that every variant is a peer variant.
    const report = await runPeerBenchmark({ variants: args.variants as PeerVariant[] });
    console.log('');
    for (const benchCase of PEER_CASES) console.log(`${benchCase.name}: ${benchCase.description}`);
    console.log('');
    console.log(formatPeerTable(report));
    writeReport(out, { name, arguments: argv, ...report });
    if (report.rows.some((row) => row.status === 'failed')) process.exitCode = 1;
    return;
  }
  const cases = selectCases(args.filters);

  const log = (line: string) => console.error(line);
  log(`pnpm bench: ${cases.map((c) => c.name).join(', ')} on ${args.variants.join(', ')}`);
  const runs: VariantRun[] = [];
  for (const variant of args.variants) runs.push(await runVariant(VARIANTS[variant], cases, log));

  console.log('');
  for (const benchCase of cases) console.log(`${benchCase.name}: ${benchCase.description}`);
  console.log('');
  console.log(formatTable(runs));
  // A variant named with --variants that a selected case does not run on would otherwise leave no trace.
  if (argv.includes('--variants')) {
    const notRun = cases.flatMap((benchCase) => {
      const listed = benchCase.variants ?? DEFAULT_CASE_VARIANTS;
      return args.variants.filter((variant) => !listed.includes(variant)).map((variant) => `  ${benchCase.name} on ${variant}: the case runs only on ${listed.join(', ')}`);
    });
    if (notRun.length > 0) console.log(['', 'not run:', ...notRun].join('\n'));
  }

  const report: BenchReport = {
    name,
    startedAt: startedAt.toISOString(),
    arguments: argv,
    runs,
    results: runs.flatMap((run) => run.results),
  };
  writeReport(out, report);
  if (report.results.some((result) => result.status === 'failed')) process.exitCode = 1;
}

/** The on/off kernel switches and their defaults, as @moebench/backend reads them. */
const KERNEL_SWITCHES: [string, boolean][] = [
  ['MOEBENCH_STOCK_KERNELS', false],
  ['MOEBENCH_NATIVE_KERNELS', true],
  ['MOEBENCH_FUSED_KERNELS', true],
];

/** Checks that the results file can be written, before anything is measured. */
function checkOutput(out: string, flag: string): void {
  try {
    mkdirSync(dirname(out), { recursive: true });
  } catch (error) {
    throw new Error(`${flag}: cannot create the folder of ${out} (${(error as Error).message}); give a path in a writable folder`);
  }
  if (existsSync(out) && statSync(out).isDirectory()) {
    throw new Error(`${flag}: ${out} is a folder; give the path of a JSON file`);
  }
}

function writeReport(out: string, report: object): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${out}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
});

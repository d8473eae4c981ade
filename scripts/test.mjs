// Runs the whole test suite: type-checks and builds every package (the CLI tests run the built
// binary), runs vitest, then prints the plain closing line "N passed, N failed" that CI reads.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const resultsFile = '.vitest-results.json';
rmSync(resultsFile, { force: true });

const build = spawnSync('pnpm', ['exec', 'tsc', '-b', 'tsconfig.json'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.log('Build failed: see the TypeScript errors above.');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const vitest = spawnSync(
  'pnpm',
  ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);

if (!existsSync(resultsFile)) {
  console.log('vitest wrote no results file.');
  console.log('0 passed, 1 failed');
  process.exit(vitest.status || 1);
}
const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
const failedSuites = results.testResults.filter((suite) => suite.status === 'failed' && suite.assertionResults.length === 0).length;
const failed = results.numFailedTests + failedSuites;
const skipped = results.numPendingTests + results.numTodoTests;
console.log(`${results.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(vitest.status ?? 1);

import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/index.js';
import { scratchDir } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const builtIndex = pathToFileURL(join(repoRoot, 'packages/results/dist/index.js')).href;
const dir = scratchDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The child is plain Node, so it runs the compiled package: build it first (incremental, fast when current).
beforeAll(() => {
  const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-b', 'packages/results'], { cwd: repoRoot, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`tsc -b packages/results failed:\n${build.stdout}${build.stderr}`);
});

// Writes steps and two-layer routing rows as fast as it can and prints each step number once its
// writes have returned, until it is killed.
const CHILD = `
import { openStore, hashConfig } from ${JSON.stringify(builtIndex)};
const store = openStore(process.argv[2], { synchronous: process.argv[3] });
const config = { suite: 'kill' };
store.createRun({ id: 'killed', suite: 'kill', manifest: { gitSha: null, gitDirty: null, versions: {}, backend: {}, seeds: {}, data: {}, config, configHash: hashConfig(config) } });
const model = store.addModel('killed', { name: 'switch', architecture: 'switch', config: {}, totalParameters: 1, activeParametersPerToken: 1, forwardFlopsPerToken: 2 });
const stats = { tokensPerExpert: [5, 3], keptPerExpert: [4, 3], droppedFraction: 0.125, routerEntropy: 0.6, maxOverMeanLoad: 1.25, idleExperts: 0 };
for (let step = 0; ; step++) {
  store.recordStep(model.id, { step, loss: 1 / (step + 1), lr: 0.001, gradNorm: 1, tokensSeen: 64 * step, tokensPerSecond: 1000, trainingSeconds: step / 100 });
  store.recordRouting(model.id, step, [{ layer: 'moe.0', stats }, { layer: 'moe.1', stats }]);
  process.stdout.write(step + '\\n');
}
`;

function runAndKill(storePath: string, afterSteps: number, synchronous: 'full' | 'normal' = 'full'): Promise<number> {
  const script = join(dir, 'writer.mjs');
  writeFileSync(script, CHILD);
  const child = spawn(process.execPath, [script, storePath, synchronous], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lastReported = -1;
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) lastReported = Number(line);
      if (lastReported >= afterSteps && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(lastReported);
      else reject(new Error(`writer exited with code ${code} before it was killed: ${stderr}`));
    });
  });
}

describe('store after SIGKILL', () => {
  it.each(['full', 'normal'] as const)('keeps every reported step (synchronous %s)', async (synchronous) => {
    const storePath = join(dir, `killed-${synchronous}.sqlite`);
    const lastReported = await runAndKill(storePath, 300, synchronous);
    expect(lastReported).toBeGreaterThanOrEqual(300);

    const reader = openStore(storePath, { readonly: true });
    expect(reader.getRun('killed')?.status).toBe('running');
    const model = reader.getModel('killed', 'switch')!;
    const steps = reader.steps(model.id);
    // Every reported step is there, in order, with nothing missing in between. The writer goes on
    // committing steps until the signal lands, so there may be more than were reported.
    expect(steps.length).toBeGreaterThanOrEqual(lastReported + 1);
    steps.forEach((step, index) => expect(step.step).toBe(index));
    expect(steps[lastReported].loss).toBe(1 / (lastReported + 1));

    // Routing rows of a step are one transaction: both layers or neither.
    const routing = reader.routing(model.id);
    expect(routing.length % 2).toBe(0);
    expect(routing.length / 2).toBeGreaterThanOrEqual(lastReported + 1);
    reader.close();
  });

  it('accepts writes again after the kill and marks the run interrupted', async () => {
    const storePath = join(dir, 'resumed.sqlite');
    const lastReported = await runAndKill(storePath, 50);

    const store = openStore(storePath);
    const model = store.getModel('killed', 'switch')!;
    store.rewindModel(model.id, lastReported);
    store.recordStep(model.id, { step: lastReported + 1, loss: 0.5, lr: 0.001, gradNorm: 1, tokensSeen: 1, tokensPerSecond: 1, trainingSeconds: 1 });
    store.setRunStatus('killed', 'interrupted', 'SIGKILL');
    store.close();

    const reader = openStore(storePath, { readonly: true });
    expect(reader.getRun('killed')?.status).toBe('interrupted');
    expect(reader.steps(model.id).length).toBe(lastReported + 2);
    reader.close();
  });
});

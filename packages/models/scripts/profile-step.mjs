// Profiles one training step of each of the seven models at the quick suite's compute-matched size
// (suites/quick.yaml: byte vocabulary, batch 16 x 64 tokens, base width 64, 4 blocks, 4 heads,
// 4 experts, 500k forward FLOPs per token) on the wasm backend.
//
// A step is the training loop's: forward in training mode, masked cross-entropy plus the auxiliary
// losses, backward, clipping by global norm 1 and an AdamW update (@moebench/train).
//
// Usage, after `pnpm exec tsc -b packages/models packages/train`:
//   node packages/models/scripts/profile-step.mjs [--before DIR] [--steps N] [--rounds N] [--only a,b]
// With --before, DIR holds a second copy of the model packages' dist folders with its own
// node_modules/@moebench links (and the same backend), as snapshot-build.sh makes it; each round then
// times both builds of each model, alternating, so that both see the same machine load.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend, Rng, tf } from '@moebench/backend';
import * as after from '@moebench/models';
import { AdamW, clipByGlobalNorm, maskedCrossEntropy } from '../../train/dist/index.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const steps = Number(option('steps', 5));
const rounds = Number(option('rounds', 3));
const beforeDir = option('before', null);
const only = option('only', null)?.split(',');

const VOCAB = 256;
const SEQ_LEN = 64;
const BATCH = 16;
const BASE = { vocabSize: VOCAB, dModel: 64, layers: 4, seqLen: SEQ_LEN, heads: 4, experts: 4 };

const info = await initBackend('wasm');
const builds = [{ label: 'after', models: after }];
if (beforeDir !== null) {
  const entry = resolve(beforeDir, 'node_modules/@moebench/models/dist/index.js');
  builds.unshift({ label: 'before', models: await import(pathToFileURL(entry).href) });
}

function makeBatch() {
  const rng = new Rng('profile-step/data');
  const ids = Int32Array.from({ length: BATCH * (SEQ_LEN + 1) }, () => rng.int(VOCAB));
  const inputs = ids.filter((_, i) => i % (SEQ_LEN + 1) !== SEQ_LEN);
  const targets = ids.filter((_, i) => i % (SEQ_LEN + 1) !== 0);
  return { inputs, targets };
}

function setUp(models, architecture) {
  const match = models.matchCompute(500_000, BASE, { architectures: [architecture] })[architecture];
  const model = models.createModel(architecture, match.config, { seed: 0 });
  const optimizer = new AdamW(model.trainableVariables, { weightDecay: 0.1, beta1: 0.9, beta2: 0.95 });
  const batch = makeBatch();
  let count = 0;
  const step = () => {
    count++;
    const inputs = tf.tensor2d(batch.inputs, [BATCH, SEQ_LEN], 'int32');
    const targets = tf.tensor2d(batch.targets, [BATCH, SEQ_LEN], 'int32');
    const { value, grads } = tf.variableGrads(() => {
      const output = model.forward(inputs, { training: true, stepSeed: `profile/${count}` });
      return tf.add(maskedCrossEntropy(output.logits, targets, output.lossMask), tf.cast(output.auxLoss, 'float32'));
    }, model.trainableVariables);
    const gradients = model.trainableVariables.map((variable) => grads[variable.name]);
    const loss = value.dataSync()[0];
    const clipped = clipByGlobalNorm(gradients, 1);
    optimizer.apply(clipped.gradients, 0.003);
    tf.dispose([value, inputs, targets, ...Object.values(grads), ...clipped.gradients]);
    return loss;
  };
  return { match, model, optimizer, step };
}

function timeSteps(run) {
  let best = Infinity;
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    run.step();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

const architectures = (only ?? after.ARCHITECTURES).filter((name) => after.ARCHITECTURES.includes(name));
const runs = new Map();
for (const architecture of architectures) {
  for (const build of builds) {
    const run = setUp(build.models, architecture);
    run.step(); // warm-up: first-call kernel set-up
    runs.set(`${build.label}/${architecture}`, { ...run, best: Infinity, profile: null });
  }
}

for (let round = 0; round < rounds; round++) {
  for (const architecture of architectures) {
    for (const build of builds) {
      const run = runs.get(`${build.label}/${architecture}`);
      run.best = Math.min(run.best, timeSteps(run));
    }
  }
}

// Per-kernel times: the minimum over three profiled steps of each kernel's summed time.
for (const architecture of architectures) {
  for (const build of builds) {
    const run = runs.get(`${build.label}/${architecture}`);
    const byKernel = new Map();
    let kernels = 0;
    for (let repeat = 0; repeat < 3; repeat++) {
      const profile = await tf.profile(() => {
        run.step();
      });
      kernels = profile.kernels.length;
      const sums = new Map();
      for (const kernel of profile.kernels) {
        const entry = sums.get(kernel.name) ?? { ms: 0, count: 0 };
        entry.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
        entry.count += 1;
        sums.set(kernel.name, entry);
      }
      for (const [name, entry] of sums) {
        const seen = byKernel.get(name);
        if (seen === undefined || entry.ms < seen.ms) byKernel.set(name, entry);
      }
    }
    run.profile = { kernels, byKernel: [...byKernel].sort((a, b) => b[1].ms - a[1].ms) };
  }
}

console.log(`backend: wasm, native matmul: ${info.nativeKernels}, replacement kernels: ${info.replacementKernels}`);
console.log(`${BATCH} x ${SEQ_LEN} tokens per step, minimum of ${rounds} rounds x ${steps} warm steps`);
console.log('');
console.log('| model | d | hidden | build | ms/step | tokens/s | kernels/step | top kernels (ms, count) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const architecture of architectures) {
  for (const build of builds) {
    const run = runs.get(`${build.label}/${architecture}`);
    const top = run.profile.byKernel
      .slice(0, 5)
      .map(([name, { ms, count }]) => `${name} ${ms.toFixed(1)} (${count})`)
      .join(', ');
    const { dModel, ffnHidden } = run.match.config;
    console.log(
      `| ${architecture} | ${dModel} | ${ffnHidden} | ${build.label} | ${run.best.toFixed(1)} | ` +
        `${Math.round((BATCH * SEQ_LEN) / (run.best / 1000))} | ${run.profile.kernels} | ${top} |`,
    );
  }
}
if (args.includes('--kernels')) {
  for (const [key, run] of runs) {
    console.log(`\n${key}`);
    for (const [name, { ms, count }] of run.profile.byKernel) console.log(`  ${name.padEnd(28)} ${ms.toFixed(2).padStart(8)} ms ${String(count).padStart(5)}`);
  }
}
for (const run of runs.values()) {
  run.optimizer.dispose();
  run.model.dispose();
}

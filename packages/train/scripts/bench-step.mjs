// Times one optimiser step (clipByGlobalNorm then AdamW.apply) and one full training step of a real
// model from @moebench/models at the quick suite's size (byte vocabulary, batch 16 x 64 tokens, base
// width 64, 4 blocks, 4 heads, 4 experts, 500k forward FLOPs per token) on the wasm backend.
//
// Usage, after `pnpm exec tsc -b packages/train`:
//   node packages/train/scripts/bench-step.mjs [--before DIR] [--full] [--identity] [--rounds N] [--only a,b]
// --before DIR: DIR holds an earlier build's adamw.js and clip.js (copied from packages/train/dist
//   into a folder inside packages/train, so that '@moebench/backend' resolves); each round then
//   times the optimiser step of both builds on the same model and gradients, alternating.
// --full: also times the full training step (forward, backward, clipping, update) with each
//   optimiser build.
// --identity (with --full): also times the current build's full step with the wasm backend's stock
//   Identity kernel instead of the replacement registered by initBackend.
// Every figure is the minimum over rounds of the mean of 5 steps, so that both variants see the
// same machine load.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend, tf } from '@moebench/backend';
import * as models from '@moebench/models';
import { Rng } from '@moebench/backend';
import { AdamW, clipByGlobalNorm, clipScale, maskedCrossEntropy } from '../dist/index.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const rounds = Number(option('rounds', 5));
const beforeDir = option('before', null);
const only = option('only', null)?.split(',');
const STEPS = 5;
const VOCAB = 256;
const SEQ_LEN = 64;
const BATCH = 16;
const BASE = { vocabSize: VOCAB, dModel: 64, layers: 4, seqLen: SEQ_LEN, heads: 4, experts: 4 };

await initBackend('wasm', { stockKernels: true });
const stockIdentity = tf.getKernel(tf.Identity, 'wasm');
await initBackend('wasm');
const sharedIdentity = tf.getKernel(tf.Identity, 'wasm');
const useIdentity = (config) => {
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel(config);
};

const optimisers = [{ label: 'current', AdamW, clipByGlobalNorm, clipScale }];
if (beforeDir !== null) {
  const adamw = await import(pathToFileURL(resolve(beforeDir, 'adamw.js')).href);
  const clip = await import(pathToFileURL(resolve(beforeDir, 'clip.js')).href);
  optimisers.unshift({ label: 'before', AdamW: adamw.AdamW, clipByGlobalNorm: clip.clipByGlobalNorm });
}

const rng = new Rng('bench-step/data');
const ids = Int32Array.from({ length: BATCH * (SEQ_LEN + 1) }, () => rng.int(VOCAB));
const inputIds = ids.filter((_, i) => i % (SEQ_LEN + 1) !== SEQ_LEN);
const targetIds = ids.filter((_, i) => i % (SEQ_LEN + 1) !== 0);

function gradientsOf(model, seed) {
  const inputs = tf.tensor2d(inputIds, [BATCH, SEQ_LEN], 'int32');
  const targets = tf.tensor2d(targetIds, [BATCH, SEQ_LEN], 'int32');
  const { value, grads } = tf.variableGrads(() => {
    const output = model.forward(inputs, { training: true, stepSeed: seed });
    return tf.add(maskedCrossEntropy(output.logits, targets, output.lossMask), tf.cast(output.auxLoss, 'float32'));
  }, model.trainableVariables);
  value.dataSync();
  tf.dispose([value, inputs, targets]);
  return model.trainableVariables.map((variable) => grads[variable.name]);
}

function optimiserStep(build, optimizer, gradients) {
  if (build.clipScale !== undefined) {
    // The training loop's path: the clipping factor goes into the update, no scaled copies.
    const { scale } = build.clipScale(gradients, 1);
    optimizer.apply(gradients, 0.003, scale);
    return;
  }
  const clipped = build.clipByGlobalNorm(gradients, 1);
  optimizer.apply(clipped.gradients, 0.003);
  tf.dispose(clipped.gradients);
}

function mean(run) {
  const start = performance.now();
  for (let i = 0; i < STEPS; i++) run(i);
  return (performance.now() - start) / STEPS;
}

console.log(`backend: wasm, ${BATCH} x ${SEQ_LEN} tokens per step, minimum over ${rounds} rounds of the mean of ${STEPS} steps`);
console.log('| model | variables | variant | ms |');
console.log('|---|---|---|---|');
for (const architecture of only ?? models.ARCHITECTURES) {
  const match = models.matchCompute(500_000, BASE, { architectures: [architecture] })[architecture];
  const model = models.createModel(architecture, match.config, { seed: 0 });
  const gradients = gradientsOf(model, 'bench/0');
  const variants = optimisers.map((build) => ({
    label: `optimiser step, ${build.label}`,
    run: (() => {
      const optimizer = new build.AdamW(model.trainableVariables, { weightDecay: 0.1, beta1: 0.9, beta2: 0.95 });
      return () => optimiserStep(build, optimizer, gradients);
    })(),
  }));
  if (args.includes('--full')) {
    // The full step: forward, backward, clipping and update, with each optimiser build.
    for (const build of optimisers) {
      const optimizer = new build.AdamW(model.trainableVariables, { weightDecay: 0.1, beta1: 0.9, beta2: 0.95 });
      const fullStep = () => {
        const grads = gradientsOf(model, 'bench/full');
        optimiserStep(build, optimizer, grads);
        tf.dispose(grads);
      };
      variants.push({ label: `full step, ${build.label}`, run: () => (useIdentity(sharedIdentity), fullStep()) });
      if (args.includes('--identity') && build === optimisers[optimisers.length - 1]) {
        variants.push({ label: `full step, ${build.label}, stock Identity`, run: () => (useIdentity(stockIdentity), fullStep()) });
      }
    }
  }
  for (const variant of variants) variant.run(0); // warm-up
  const best = variants.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    variants.forEach((variant, v) => {
      best[v] = Math.min(best[v], mean(variant.run));
    });
  }
  useIdentity(sharedIdentity);
  variants.forEach((variant, v) => console.log(`| ${architecture} | ${gradients.length} | ${variant.label} | ${best[v].toFixed(2)} |`));
  tf.dispose(gradients);
}

// Measures forward + backward of the MoE layers next to the dense FFN, and which kernels the
// forward and backward pass of dispatch plus combine run, with their time. Run from the repository
// root after `pnpm exec tsc -b packages/switch packages/gshard packages/hash-layers`:
//   node packages/moe/scripts/measure.mjs [wasm|cpu] [rounds]
// Sizes: 2048 tokens, d = 256, f = 1024, 8 experts, training mode, the layers' default options.
// The cases run interleaved, one step each per round, and the script prints the minimum and the
// median over the rounds after the first, so that load from other processes shows as a spread.
import { initBackend, Rng, tf } from '@moebench/backend';
import { combine, dispatch, ExpertBank } from '../dist/index.js';
import { createSwitchLayer } from '../../switch/dist/index.js';
import { createGShardLayer } from '../../gshard/dist/index.js';
import { createHashLayer } from '../../hash-layers/dist/index.js';

const backend = process.argv[2] ?? 'wasm';
const rounds = Number(process.argv[3] ?? 6);
const [TOKENS, D, F, E, VOCAB] = [2048, 256, 1024, 8, 256];
await initBackend(backend);

const rng = new Rng('measure');
const input = rng.normalTensor([TOKENS, D]);
const upstream = rng.normalTensor([TOKENS, D]);
const tokenIds = Int32Array.from({ length: TOKENS }, () => rng.int(VOCAB));

function gradientStep(loss, variables) {
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, variables);
    value.dataSync();
    for (const grad of Object.values(grads)) grad.dataSync();
  });
}

function denseCase(hiddenSize) {
  const bank = new ExpertBank({ numExperts: 1, dModel: D, hiddenSize, rng: 1 });
  const x = tf.reshape(input, [1, TOKENS, D]);
  return {
    flopsPerToken: 4 * D * hiddenSize,
    step: () => gradientStep(() => tf.sum(tf.mul(tf.reshape(bank.apply(x), [TOKENS, D]), upstream)), bank.trainableVariables),
  };
}

function layerCase(layer) {
  let step = 0;
  return {
    flopsPerToken: layer.flopsPerToken(),
    step: () =>
      gradientStep(() => {
        const { output, auxLoss } = layer.apply(input, { training: true, rng: new Rng(`step-${step++}`), tokenIds });
        return tf.add(tf.sum(tf.mul(output, upstream)), auxLoss);
      }, layer.trainableVariables),
  };
}

const cases = {
  'dense f=1024': denseCase(F),
  'switch': layerCase(createSwitchLayer({ dModel: D, hiddenSize: F, numExperts: E, seed: 1 })),
  'hash (random table)': layerCase(createHashLayer({ dModel: D, hiddenSize: F, numExperts: E, vocabSize: VOCAB, seed: 1 })),
  'dense f=2048': denseCase(2 * F),
  'gshard': layerCase(createGShardLayer({ dModel: D, hiddenSize: F, numExperts: E, seed: 1 })),
};
const times = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, { step }] of Object.entries(cases)) {
    const start = performance.now();
    step();
    if (round > 0) times[name].push(performance.now() - start);
  }
}

console.log(`backend ${backend}, ${TOKENS} tokens, d=${D}, f=${F}, E=${E}, forward + backward, ${rounds - 1} rounds`);
console.log('case                  min ms  median ms  tokens/s (min)  active GFLOP/s (min)');
for (const [name, { flopsPerToken }] of Object.entries(cases)) {
  const sorted = times[name].sort((a, b) => a - b);
  const [min, median] = [sorted[0], sorted[Math.floor(sorted.length / 2)]];
  const tokensPerSecond = (TOKENS / min) * 1000;
  const gflops = (3 * flopsPerToken * TOKENS) / min / 1e6;
  console.log(`${name.padEnd(20)} ${min.toFixed(0).padStart(7)} ${median.toFixed(0).padStart(10)} ${tokensPerSecond.toFixed(0).padStart(15)} ${gflops.toFixed(1).padStart(21)}`);
}

// Kernels of dispatch + combine alone, forward and backward, for a fixed Switch plan (capacity 256).
const switchLayer = createSwitchLayer({ dModel: D, hiddenSize: F, numExperts: E, seed: 2 });
const plan = switchLayer.router.route(input, { training: false });
const buffer = tf.variable(tf.zeros([E, plan.capacity, D]));
const features = tf.variable(input);
const best = new Map();
for (let round = 0; round < 3; round++) {
  const profile = await tf.profile(() =>
    gradientStep(() => tf.sum(tf.mul(combine(tf.add(dispatch(features, plan), buffer), plan), upstream)), [features, buffer]),
  );
  const byKernel = new Map();
  for (const kernel of profile.kernels) {
    const entry = byKernel.get(kernel.name) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
    byKernel.set(kernel.name, entry);
  }
  for (const [name, entry] of byKernel) {
    const previous = best.get(name);
    if (previous === undefined || entry.ms < previous.ms) best.set(name, entry);
  }
}
console.log(`kernels of dispatch + combine, forward and backward (capacity ${plan.capacity}; min over 3 profiles):`);
for (const [name, { count, ms }] of [...best].sort((a, b) => b[1].ms - a[1].ms)) {
  console.log(`  ${name.padEnd(20)} x${String(count).padEnd(3)} ${ms.toFixed(2)} ms`);
}

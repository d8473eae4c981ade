// Measures forward + backward of the MoE layers next to the dense FFN, and which kernels the
// backward pass of dispatch and combine runs, with their time. Run from the repository root after
// `pnpm exec tsc -b packages/switch packages/gshard packages/hash-layers`:
//   node packages/moe/scripts/measure.mjs [wasm|cpu] [steps]
// Sizes: 2048 tokens, d = 256, f = 1024, 8 experts (the layers' defaults otherwise).
import { initBackend, Rng, tf } from '@moebench/backend';
import { combine, dispatch, ExpertBank, gelu } from '../dist/index.js';
import { createSwitchLayer } from '../../switch/dist/index.js';
import { createGShardLayer } from '../../gshard/dist/index.js';
import { createHashLayer } from '../../hash-layers/dist/index.js';

const backend = process.argv[2] ?? 'wasm';
const steps = Number(process.argv[3] ?? 5);
const [TOKENS, D, F, E] = [2048, 256, 1024, 8];
await initBackend(backend);

const input = new Rng('bench/input').normalTensor([TOKENS, D]);
const upstream = new Rng('bench/upstream').normalTensor([TOKENS, D]);
const tokenIds = Int32Array.from({ length: TOKENS }, (_, i) => (i * 7919) % 256);

function timeSteps(step) {
  step(0);
  const times = [];
  for (let i = 1; i <= steps; i++) {
    const start = performance.now();
    step(i);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function report(name, ms, forwardFlopsPerToken) {
  const tokensPerSecond = (TOKENS / ms) * 1000;
  const gflops = (3 * forwardFlopsPerToken * TOKENS) / ms / 1e6;
  console.log(`${name.padEnd(24)} ${ms.toFixed(1).padStart(8)} ms  ${tokensPerSecond.toFixed(0).padStart(7)} tokens/s  ${gflops.toFixed(2).padStart(6)} active GFLOP/s`);
}

// Dense FFN: a one-expert bank run on all tokens as one [1, S, d] buffer.
const dense = new ExpertBank({ numExperts: 1, dModel: D, hiddenSize: F, rng: 1 });
const denseMs = timeSteps(() =>
  tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(tf.reshape(dense.apply(tf.reshape(input, [1, TOKENS, D])), [TOKENS, D]), upstream)),
      dense.trainableVariables,
    );
    Object.values(grads).forEach((g) => g.dataSync());
  }),
);
console.log(`backend ${backend}, ${TOKENS} tokens, d=${D}, f=${F}, E=${E}; median of ${steps} steps, forward + backward`);
report('dense-ffn', denseMs, 4 * D * F);

const layers = {
  'switch (cf 1.0)': createSwitchLayer({ dModel: D, hiddenSize: F, numExperts: E, seed: 1 }),
  'gshard (cf 1.0)': createGShardLayer({ dModel: D, hiddenSize: F, numExperts: E, seed: 1 }),
  'hash (random)': createHashLayer({ dModel: D, hiddenSize: F, numExperts: E, vocabSize: 256, seed: 1 }),
};
for (const [name, layer] of Object.entries(layers)) {
  const ms = timeSteps((step) =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const { output, auxLoss } = layer.apply(input, { training: true, rng: new Rng(`step-${step}`), tokenIds });
        return tf.add(tf.sum(tf.mul(output, upstream)), auxLoss);
      }, layer.trainableVariables);
      value.dataSync();
      Object.values(grads).forEach((g) => g.dataSync());
    }),
  );
  report(name, ms, layer.flopsPerToken());
}

// Kernels of dispatch + combine alone (forward and backward), with a fixed Switch plan.
const switchLayer = layers['switch (cf 1.0)'];
const plan = switchLayer.router.route(input, { training: false });
const buffer = tf.variable(tf.zeros([E, plan.capacity, D]));
const profile = await tf.profile(() =>
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const x = tf.add(input, tf.mul(tf.sum(buffer), 0)); // makes the input depend on a variable
      const dispatched = dispatch(x, plan);
      return tf.sum(tf.mul(combine(tf.add(dispatched, buffer), plan), upstream));
    }, [buffer]);
    Object.values(grads).forEach((g) => g.dataSync());
  }),
);
const byKernel = new Map();
for (const kernel of profile.kernels) {
  const entry = byKernel.get(kernel.name) ?? { count: 0, ms: 0 };
  entry.count++;
  entry.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
  byKernel.set(kernel.name, entry);
}
console.log('kernels of dispatch + combine forward and backward (one call each):');
for (const [name, { count, ms }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
  console.log(`  ${name.padEnd(22)} x${count}  ${ms.toFixed(2)} ms`);
}

// Times one HASH layer's forward + backward pass in training on the dropless per-expert path and on
// the [E, C, d] buffer padded to the busiest expert. It uses evenly spread ids, and skewed ids where
// 60% of the positions hold one id. Run from the repository root after
// `pnpm exec tsc -b packages/hash-layers`:
//   node packages/moe/scripts/measure-dropless.mjs [wasm|cpu] [rounds]
// Sizes: the quick suite's HASH layer, 1024 tokens, d = 64, f = 264, 4 experts, 256 ids. The four
// cases run interleaved, 20 steps each per round after 10 warm-up steps. The script prints each
// case's median and minimum wall time per step and the median process CPU time per step (native
// threads included), which load from other processes changes less than wall time.
import { initBackend, Rng, tf } from '@moebench/backend';
import { createHashLayer } from '../../hash-layers/dist/index.js';

const backend = process.argv[2] ?? 'wasm';
const rounds = Number(process.argv[3] ?? 5);
const [TOKENS, D, F, E, VOCAB] = [1024, 64, 264, 4, 256];
await initBackend(backend);

const layer = createHashLayer({ dModel: D, hiddenSize: F, numExperts: E, vocabSize: VOCAB, seed: 1 });
const rng = new Rng('measure-dropless');
const ids = {
  uniform: Int32Array.from({ length: TOKENS }, () => rng.int(VOCAB)),
  skewed: Int32Array.from({ length: TOKENS }, () => (rng.next() < 0.6 ? 32 : rng.int(VOCAB))),
};
const input = tf.variable(rng.normalTensor([TOKENS, D]));

// The buffer path runs the same plan with its `dropless` flag cleared.
let useBuffer = false;
const route = layer.router.route.bind(layer.router);
layer.router.route = (features, context) => {
  const plan = route(features, context);
  return useBuffer ? { ...plan, dropless: false } : plan;
};

function step(tokenIds) {
  const { value, grads } = tf.variableGrads(() => {
    const { output, auxLoss } = layer.apply(input, { training: true, tokenIds });
    auxLoss.dispose();
    return tf.sum(tf.square(output));
  }, [input, ...layer.trainableVariables]);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
}

const cases = [];
for (const load of Object.keys(ids)) for (const buffer of [false, true]) cases.push({ load, buffer, wall: [], cpu: [] });
for (const { load, buffer } of cases) {
  useBuffer = buffer;
  for (let i = 0; i < 10; i++) step(ids[load]);
}
for (let round = 0; round < rounds; round++) {
  for (const entry of cases) {
    useBuffer = entry.buffer;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < 20; i++) step(ids[entry.load]);
    entry.wall.push((performance.now() - start) / 20);
    const cpu = process.cpuUsage(cpuStart);
    entry.cpu.push((cpu.user + cpu.system) / 1000 / 20);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const { load, buffer, wall, cpu } of cases) {
  const plan = route(input, { training: true, tokenIds: ids[load] });
  plan.gates.dispose();
  const loads = new Array(E).fill(0);
  for (const expert of plan.experts) loads[expert]++;
  console.log(
    `${load.padEnd(8)} ${(buffer ? 'buffer' : 'per expert').padEnd(11)} busiest expert ${(Math.max(...loads) / TOKENS * 100).toFixed(0)}%  ` +
      `wall median ${median(wall).toFixed(2)} ms, min ${Math.min(...wall).toFixed(2)} ms, CPU median ${median(cpu).toFixed(2)} ms`,
  );
}
layer.dispose();
input.dispose();

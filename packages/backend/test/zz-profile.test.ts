import { it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { createModel } from '@moebench/models';

it('profile', async () => {
  const stock = process.env.PROFILE_STOCK === '1';
  await initBackend('wasm', { stockKernels: stock });
  const rng = new Rng(1);
  const lines: string[] = [];
  for (const arch of (process.env.ARCHS ?? 'transformer,gmlp,gshard,switch,base,hash,smlp').split(',')) {
    const model = createModel(arch, { vocabSize: 256, dModel: 64, layers: 4, seqLen: 64, heads: 4, experts: 4 }, { seed: 1 });
    const tokens = tf.tensor2d(Int32Array.from({ length: 16 * 64 }, () => rng.int(256)), [16, 64], 'int32');
    const targets = tf.tensor2d(Int32Array.from({ length: 16 * 64 }, () => rng.int(256)), [16, 64], 'int32');
    const step = () => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(tokens, { training: true, stepSeed: 1 });
        const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [-1]), 256), tf.reshape(out.logits, [-1, 256]));
        return tf.add(loss, out.auxLoss) as tf.Scalar;
      }, model.trainableVariables);
      value.dataSync();
      for (const g of Object.values(grads)) g.dataSync();
    });
    step();
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) step();
    const ms = (performance.now() - t0) / 3;
    const prof = await tf.profile(step);
    const agg: Record<string, number> = {};
    for (const k of prof.kernels) agg[k.name] = (agg[k.name] ?? 0) + (k.kernelTimeMs as number);
    if (process.env.DETAIL) {
      const det: Record<string, [number, number]> = {};
      for (const k of prof.kernels) {
        if (!process.env.DETAIL.split(',').includes(k.name)) continue;
        const key = `${k.name} ${k.inputShapes.map((s) => '[' + s + ']').join('x')} ${JSON.stringify((k as any).extraInfo ?? '')}`;
        det[key] = [(det[key]?.[0] ?? 0) + (k.kernelTimeMs as number), (det[key]?.[1] ?? 0) + 1];
      }
      lines.push(...Object.entries(det).sort((a, b) => b[1][0] - a[1][0]).slice(0, 25).map(([k, [t, c]]) => `   ${t.toFixed(1)}ms x${c} ${k}`));
    }
    const total = Object.values(agg).reduce((a, b) => a + b, 0);
    lines.push(`${arch}: ${ms.toFixed(0)} ms/step (kernels ${total.toFixed(0)} ms) ` + Object.entries(agg).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k}:${v.toFixed(1)}`).join(' '));
    tf.dispose([tokens, targets]);
    model.dispose();
  }
  console.log(lines.join('\n'));
}, 600_000);

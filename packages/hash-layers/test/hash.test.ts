import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@moebench/backend';
import { combine, dispatch } from '@moebench/moe';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { denseFeedForward, maxAbsDiff, naiveCombine, naiveDispatch, trainFourSteps, values } from '../../moe/test/reference.js';
import {
  buildBalancedTable,
  buildBigramTable,
  buildRandomTable,
  createHashLayer,
  deserializeHashTable,
  hashRoute,
  lookupExperts,
  resolveHashOptions,
  serializeHashTable,
} from '../src/index.js';

describe('hash tables', () => {
  it('repeats the random table for the same seed', () => {
    const a = buildRandomTable(200, 8, 3);
    const b = buildRandomTable(200, 8, 3);
    expect(Array.from(a.experts!)).toEqual(Array.from(b.experts!));
    expect(Array.from(buildRandomTable(200, 8, 4).experts!)).not.toEqual(Array.from(a.experts!));
    expect(Array.from(a.experts!).every((e) => e >= 0 && e < 8)).toBe(true);
    // Every expert gets some of the 200 ids.
    expect(new Set(a.experts).size).toBe(8);
  });

  it('builds a hand-computed balanced table', () => {
    // Order by count: id 0 (10) -> e0, id 2 (7) -> e1, id 3 (3) -> e1, id 5 (2) -> e0, id 1 (1) -> e1;
    // id 4 never occurs and is dealt round-robin from expert 0.
    const table = buildBalancedTable([10, 1, 7, 3, 0, 2], 2);
    expect(Array.from(table.experts!)).toEqual([0, 1, 1, 1, 0, 0]);
  });

  it('spreads a skewed unigram count within one top count', () => {
    // Zipf counts over 500 ids.
    const counts = Array.from({ length: 500 }, (_, rank) => Math.round(100_000 / (rank + 1)));
    const table = buildBalancedTable(counts, 8);
    const loads = new Array(8).fill(0);
    counts.forEach((count, token) => (loads[table.experts![token]] += count));
    const largestCount = Math.max(...counts);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(largestCount);
    const mean = loads.reduce((a, b) => a + b, 0) / 8;
    expect(Math.max(...loads) - mean).toBeLessThanOrEqual(largestCount);
  });

  it('hashes bigrams by both ids and repeats for the same seed', () => {
    const table = buildBigramTable(50, 4, 7);
    const current = Int32Array.from({ length: 50 }, () => 9);
    const previous = Int32Array.from({ length: 50 }, (_, index) => index - 1);
    const experts = lookupExperts(table, current, previous);
    expect(Array.from(lookupExperts(buildBigramTable(50, 4, 7), current, previous))).toEqual(Array.from(experts));
    // The same current token reaches several experts depending on the previous token.
    expect(new Set(experts).size).toBe(4);
    expect(Array.from(lookupExperts(buildBigramTable(50, 4, 8), current, previous))).not.toEqual(Array.from(experts));
    expect(() => lookupExperts(table, current)).toThrow('lookupExperts: a bigram table needs previousTokenIds with 50 entries, received none');
  });

  it('round-trips every kind through JSON', () => {
    for (const table of [buildRandomTable(30, 4, 1), buildBalancedTable([5, 0, 3, 9, 1], 2), buildBigramTable(30, 4, 2)]) {
      const restored = deserializeHashTable(JSON.parse(JSON.stringify(serializeHashTable(table))));
      expect(restored.kind).toBe(table.kind);
      const ids = Int32Array.from({ length: table.vocabSize }, (_, id) => id);
      const previous = Int32Array.from({ length: table.vocabSize }, (_, id) => table.vocabSize - 1 - id);
      expect(Array.from(lookupExperts(restored, ids, previous))).toEqual(Array.from(lookupExperts(table, ids, previous)));
    }
  });

  it('rejects a malformed serialized table', () => {
    const good = serializeHashTable(buildRandomTable(3, 2, 1));
    expect(() => deserializeHashTable({ ...good, format: 'other' })).toThrow('deserializeHashTable: expected format "moebench-hash-table" version 1');
    expect(() => deserializeHashTable({ ...good, experts: [0, 1] })).toThrow(
      'deserializeHashTable: experts must be an array of vocabSize = 3 entries, received 2 entries',
    );
    expect(() => deserializeHashTable({ ...good, experts: [0, 1, 2] })).toThrow(
      'deserializeHashTable: experts[2] must be an integer in [0, 2), received 2',
    );
  });

  it('rejects token ids outside the vocabulary', () => {
    expect(() => lookupExperts(buildRandomTable(10, 2, 0), Int32Array.from([3, 10]))).toThrow(
      "lookupExperts: token id at 1 must be an integer in [0, 10) (the table's vocabulary), received 10",
    );
    // A plain array is not truncated the way an Int32Array is: a fractional id must not read expert 0.
    expect(() => lookupExperts(buildRandomTable(10, 2, 0), [3, 1.5] as unknown as Int32Array)).toThrow(
      "lookupExperts: token id at 1 must be an integer in [0, 10) (the table's vocabulary), received 1.5",
    );
    const bigram = buildBigramTable(10, 2, 0);
    expect(() => lookupExperts(bigram, Int32Array.from([3, 4]), [-1, 2.5] as unknown as Int32Array)).toThrow(
      'lookupExperts: previous token id at 1 must be an integer in [-1, 10), received 2.5',
    );
  });
});

describe.each(['cpu', 'wasm'] as const)('HASH layer on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('routes a hand-computed plan with gate 1 and no loss', () => {
    tf.tidy(() => {
      const table = buildBalancedTable([10, 1, 7, 3, 0, 2], 2); // [0, 1, 1, 1, 0, 0]
      const plan = hashRoute(tf.zeros([5, 3]) as tf.Tensor2D, table, 0, { training: true, tokenIds: Int32Array.from([0, 1, 2, 0, 5]) });
      expect(Array.from(plan.experts)).toEqual([0, 1, 1, 0, 0]);
      expect(Array.from(plan.slots)).toEqual([0, 0, 1, 1, 2]);
      expect(plan.capacity).toBe(3);
      expect(values(plan.gates)).toEqual([1, 1, 1, 1, 1]);
      expect(plan.losses).toEqual({});
      expect(() => hashRoute(tf.zeros([5, 3]) as tf.Tensor2D, table, 0, { training: true })).toThrow(
        'hashRoute: context.tokenIds must hold the 5 routed token ids, received none',
      );
    });
  });

  it('drops tokens past a positive capacity factor to zero', () => {
    const layer = createHashLayer({ dModel: 4, vocabSize: 2, numExperts: 2, hiddenSize: 8, capacityFactor: 1, table: { kind: 'random', numExperts: 2, vocabSize: 2, experts: Int32Array.from([0, 1]) } });
    tf.tidy(() => {
      // Four tokens go to expert 0 and C = ceil(5 / 2) = 3, so token 3 is dropped.
      const input = tf.add(tf.abs(new Rng(1).normalTensor([5, 4])), 0.1);
      const { output, stats, auxLoss } = layer.apply(input, { training: true, tokenIds: Int32Array.from([0, 0, 0, 0, 1]) });
      const rows = values(output);
      expect(rows.slice(12, 16)).toEqual([0, 0, 0, 0]);
      expect(rows.slice(0, 12).every((value) => value !== 0)).toBe(true);
      expect(stats.keptPerExpert).toEqual([3, 1]);
      expect(stats.routerEntropy).toBeNull();
      expect(auxLoss.dataSync()[0]).toBe(0);
    });
    layer.dispose();
  });

  it('equals a dense FFN with one expert', () => {
    const layer = createHashLayer({ dModel: 4, vocabSize: 10, numExperts: 1, hiddenSize: 8, seed: 2 });
    layer.bank.b1.assign(new Rng(3).normalTensor([1, 8]) as tf.Tensor2D);
    layer.bank.b2.assign(new Rng(4).normalTensor([1, 4]) as tf.Tensor2D);
    tf.tidy(() => {
      const input = new Rng(5).normalTensor([2, 3, 4]);
      const tokenIds = Int32Array.from([1, 2, 3, 4, 5, 6]);
      const { output } = layer.apply(input, { training: false, tokenIds });
      const { w1, b1, w2, b2 } = layer.bank;
      const dense = denseFeedForward(tf.reshape(input, [6, 4]) as tf.Tensor2D, tf.squeeze(w1, [0]), tf.squeeze(b1, [0]), tf.squeeze(w2, [0]), tf.squeeze(b2, [0]));
      expect(maxAbsDiff(tf.reshape(output, [6, 4]), dense)).toBeLessThan(1e-5);
    });
    layer.dispose();
  });

  it('matches the one-hot reference in outputs and gradients', () => {
    const layer = createHashLayer({ dModel: 4, vocabSize: 16, numExperts: 3, hiddenSize: 6, kind: 'bigram', capacityFactor: 0.75, seed: 6 });
    const input = new Rng(7).normalTensor([12, 4]) as tf.Tensor2D;
    const tokenIds = Int32Array.from({ length: 12 }, (_, index) => (index * 5) % 16);
    const previousTokenIds = Int32Array.from({ length: 12 }, (_, index) => (index === 0 ? -1 : tokenIds[index - 1]));
    let dropped = 0;
    const lossOf = (fast: boolean) => () =>
      tf.tidy(() => {
        const plan = layer.router.route(input, { training: true, tokenIds, previousTokenIds });
        dropped = Array.from(plan.slots).filter((slot) => slot < 0).length;
        const outputs = layer.bank.apply(fast ? dispatch(input, plan) : naiveDispatch(input, plan));
        const combined = fast ? combine(outputs, plan) : naiveCombine(outputs, plan);
        return tf.sum(tf.mul(tf.square(combined), tf.reshape(tf.range(1, 49), [12, 4]))) as tf.Scalar;
      });
    const fast = tf.variableGrads(lossOf(true), layer.trainableVariables);
    const naive = tf.variableGrads(lossOf(false), layer.trainableVariables);
    expect(dropped).toBeGreaterThan(0);
    expect(layer.trainableVariables).toHaveLength(4);
    expect(fast.value.dataSync()[0]).toBeCloseTo(naive.value.dataSync()[0], 3);
    for (const variable of layer.trainableVariables) {
      const reference = naive.grads[variable.name];
      const scale = Math.max(1, tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0]));
      expect(maxAbsDiff(fast.grads[variable.name], reference) / scale, variable.name).toBeLessThan(1e-5);
    }
    tf.dispose([fast.value, naive.value, ...Object.values(fast.grads), ...Object.values(naive.grads), input]);
    layer.dispose();
  });

  it('repeats losses for the same seed and keeps tensors flat', () => {
    const tokenIds = Int32Array.from({ length: 16 }, (_, index) => (index * 7) % 20);
    const run = () =>
      trainFourSteps(
        () => createHashLayer({ dModel: 4, vocabSize: 20, numExperts: 4, hiddenSize: 8, seed: 9 }),
        () => ({ training: true, tokenIds }),
      );
    const first = run();
    expect(run()).toEqual(first);
    expect(first[3]).toBeLessThan(first[0]);
  });
});

describe('HASH options', () => {
  it('fills in the documented defaults', () => {
    expect(resolveHashOptions({ dModel: 8, vocabSize: 100 })).toMatchObject({
      numExperts: 8, hiddenSize: 32, kind: 'random', capacityFactor: 0, expertInitScale: 1, activation: 'gelu', seed: 0,
    });
  });

  it('rejects invalid options by field and value', () => {
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, numExperts: 0 })).toThrow('HASH: numExperts must be an integer >= 1, received 0');
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, kind: 'trigram' as never })).toThrow(
      'HASH: kind must be one of "random", "balanced", "bigram", received "trigram"',
    );
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, table: buildRandomTable(12, 8, 0) })).toThrow(
      'HASH: table.vocabSize must equal vocabSize = 10, received 12',
    );
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, kind: 'balanced' })).toThrow('HASH: unigramCounts is missing');
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, kind: 'balanced', unigramCounts: [1, 2] })).toThrow(
      'HASH: unigramCounts must have vocabSize = 10 entries, received 2',
    );
    expect(() => resolveHashOptions(undefined as never)).toThrow('HASH: options must be an object with at least dModel and vocabSize, received undefined');
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 10, hashKind: 'random' } as never)).toThrow('HASH: unknown option "hashKind"');
    const table = { kind: 'random' as const, vocabSize: 3, numExperts: 2 };
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 3, numExperts: 2, table: { ...table, experts: new Int32Array(2) } })).toThrow(
      'HASH: table.experts must have table.vocabSize = 3 entries, received 2',
    );
    expect(() => resolveHashOptions({ dModel: 4, vocabSize: 3, numExperts: 2, table: { ...table, experts: Int32Array.from([0, 5, 1]) } })).toThrow(
      'HASH: table.experts[1] must be an expert in [0, 2), received 5',
    );
  });

  it('counts one expert per token and no router', async () => {
    await initBackend('cpu');
    const layer = createHashLayer({ dModel: 4, vocabSize: 10, numExperts: 3, hiddenSize: 8 });
    const perExpert = 2 * 4 * 8 + 8 + 4;
    expect(layer.parameterCount()).toEqual({ total: 3 * perExpert, activePerToken: perExpert });
    expect(layer.flopsPerToken()).toBe(4 * 4 * 8);
    layer.dispose();
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(4);
  });
});

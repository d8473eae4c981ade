import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@moebench/backend';
import { createModel, validateModelConfig, type Architecture, type ModelConfig } from '../src/index.js';
import { CASES, TINY } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/** Runs `check` and returns its error message, or null when it did not throw. */
function messageOf(check: () => unknown): string | null {
  try {
    check();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Configs that createModel rejects in a layer package, one per options object and kind of mistake. */
const REJECTED: [string, Architecture, ModelConfig][] = [
  ['a misspelt switch option', 'switch', { ...TINY, switch: { capacityFator: 2 } as ModelConfig['switch'] }],
  ['a switch capacity factor of the wrong type', 'switch', { ...TINY, switch: { capacityFactor: 'two' } as unknown as ModelConfig['switch'] }],
  ['a misspelt gshard option', 'gshard', { ...TINY, gshard: { secondExpertPolicy: 'sometimes' } as unknown as ModelConfig['gshard'] }],
  ['a misspelt base option', 'base', { ...TINY, base: { sublayer: 2 } as ModelConfig['base'] }],
  ['an unknown hash table kind', 'hash', { ...TINY, hash: { kind: 'trigram' } as unknown as ModelConfig['hash'] }],
  ['a misspelt gmlp option', 'gmlp', { ...TINY, gmlp: { spatialInit: 0.1 } as ModelConfig['gmlp'] }],
  ['a misspelt sMoE option', 'smlp', { ...TINY, smlp: { smoe: { routingMode: 'partial-prediction' } } as ModelConfig['smlp'] }],
  ['an invalid sMoE prefix fraction', 'smlp', { ...TINY, smlp: { smoe: { routing: 'partial-prediction', prefixFraction: 1.5 } } }],
  ['a misspelt tMoE option', 'smlp', { ...TINY, smlp: { tmoe: { sublayer: 2 } } as ModelConfig['smlp'] }],
  ['a misspelt gmlp option in sMLP dense blocks', 'smlp', { ...TINY, gmlp: { spatialInit: 0.1 } as ModelConfig['gmlp'] }],
  ['an unknown model field', 'transformer', { ...TINY, dModell: 8 } as ModelConfig],
  ['a width the heads do not divide', 'switch', { ...TINY, dModel: 7 }],
];

describe('validateModelConfig', () => {
  it.each(CASES.map((entry) => [entry.name, entry] as const))('accepts the %s test config and creates no tensor', (_, entry) => {
    const before = tf.memory().numTensors;
    expect(() => validateModelConfig(entry.architecture, entry.config)).not.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(REJECTED)('rejects %s with the error createModel raises', (_, architecture, config) => {
    const before = tf.memory().numTensors;
    const fromValidate = messageOf(() => validateModelConfig(architecture, config));
    expect(tf.memory().numTensors).toBe(before);
    const fromCreate = messageOf(() => createModel(architecture, config).dispose());
    expect(fromCreate).not.toBeNull();
    expect(fromValidate).toBe(fromCreate);
  });

  it('rejects an unknown architecture like createModel', () => {
    expect(messageOf(() => validateModelConfig('mamba', TINY))).toBe(messageOf(() => createModel('mamba', TINY)));
  });

  it('accepts a balanced HASH table without unigram counts, which a run takes from its data', () => {
    expect(() => validateModelConfig('hash', { ...TINY, hash: { kind: 'balanced' } })).not.toThrow();
  });
});

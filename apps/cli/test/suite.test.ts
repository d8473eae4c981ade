import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planModels } from '../src/plan.js';
import { backendMismatchWarning, BUILTIN_SUITES, loadSuite, resolveSuitePath, suitesFolder, validateSuite } from '../src/suite.js';

const smoke = parse(readFileSync(join(suitesFolder(), 'smoke.yaml'), 'utf8')) as Record<string, unknown>;

// Returns the smoke suite with `path` (dot-separated) set to `value`, or removed when value is undefined.
function smokeWith(path: string, value: unknown): unknown {
  const copy = structuredClone(smoke) as Record<string, unknown>;
  const keys = path.split('.');
  let node = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  if (value === undefined) delete node[keys[keys.length - 1]];
  else node[keys[keys.length - 1]] = value;
  return copy;
}

describe('validateSuite', () => {
  it('accepts every built-in suite', () => {
    for (const name of BUILTIN_SUITES) {
      const suite = loadSuite(join(suitesFolder(), `${name}.yaml`));
      expect(suite.name).toBe(name);
      expect(suite.models.map((model) => model.architecture).sort()).toEqual(['base', 'gmlp', 'gshard', 'hash', 'smlp', 'switch', 'transformer']);
    }
  });

  it('fills in defaults', () => {
    const suite = validateSuite(smokeWith('training.minLearningRate', undefined), 'smoke.yaml');
    expect(suite.training.minLearningRate).toBeCloseTo(0.0003, 12);
    expect(suite.training.beta2).toBe(0.95);
    expect(suite.targetFlopsPerToken).toBeNull();
    expect(suite.models[0].name).toBe('transformer');
  });

  it('accepts intervals it cannot compare with the budget', () => {
    const suite = validateSuite(smokeWith('training.evaluationInterval', { unit: 'seconds', amount: 1000 }), 'smoke.yaml');
    expect(suite.training.evaluationInterval).toEqual({ unit: 'seconds', amount: 1000 });
    const tokens = validateSuite(smokeWith('training.evaluationInterval', { unit: 'tokens', amount: 384 }), 'smoke.yaml');
    expect(tokens.training.evaluationInterval.amount).toBe(384);
  });

  const cases: Array<[string, unknown, string]> = [
    ['color', 'red', 'Invalid suite smoke.yaml: color is an unknown field; allowed: the fields name, description, backend'],
    ['backend', 'webgl', 'backend is "webgl"; allowed: auto, wasm, cpu, tensorflow.'],
    ['data.corpus', 'wikipedia', 'data.corpus is "wikipedia"; allowed: sotu, brown, files.'],
    ['data.corpus', 'files', 'data.paths is missing; allowed: a non-empty list of files or folders when data.corpus is "files".'],
    ['data.tokenizer', 'bpe', 'data.tokenizer is "bpe"; allowed: byte, gpt2.'],
    ['data.seqLen', 16.5, 'data.seqLen is 16.5; allowed: an integer >= 2 and <= 9007199254740991.'],
    ['data.batchSize', undefined, 'data.batchSize is missing; allowed: an integer >= 1 and <= 9007199254740991.'],
    ['training.budget', { unit: 'epochs', amount: 1 }, 'training.budget.unit is "epochs"; allowed: seconds, tokens, steps.'],
    ['training.budget', { unit: 'steps', amount: 0 }, 'training.budget.amount is 0; allowed: an integer >= 1 and <= 9007199254740991.'],
    ['training.budget', { unit: 'seconds', amount: -5 }, 'training.budget.amount is -5; allowed: a number > 0.'],
    ['training.evaluationInterval', { unit: 'steps', amount: 2, every: 1 }, 'training.evaluationInterval.every is an unknown field; allowed: the fields unit, amount.'],
    ['training.learningRate', -0.1, 'training.learningRate is -0.1; allowed: a number > 0.'],
    ['training.minLearningRate', 0.1, 'training.minLearningRate is 0.1; allowed: a number in [0, training.learningRate = 0.003].'],
    ['training.learningRate', NaN, 'training.learningRate is NaN; allowed: a number > 0.'],
    ['training.gradientClipNorm', Infinity, 'training.gradientClipNorm is Infinity; allowed: a number >= 0.'],
    ['training.evaluationInterval', { unit: 'steps', amount: 7 }, 'training.evaluationInterval is {"unit":"steps","amount":7}; allowed: an interval no longer than training.budget (6 steps, with 64 tokens per step).'],
    ['training.evaluationInterval', { unit: 'tokens', amount: 385 }, 'training.evaluationInterval is {"unit":"tokens","amount":385}; allowed: an interval no longer than training.budget'],
    ['training.checkpointInterval', { unit: 'steps', amount: 100 }, 'training.checkpointInterval is {"unit":"steps","amount":100}; allowed: an interval no longer than training.budget'],
    ['training.warmupSteps', 6, 'training.warmupSteps is 6; allowed: fewer steps than training.budget (6 steps, with 64 tokens per step), so that the cosine decay runs.'],
    ['training.beta1', 1, 'training.beta1 is 1; allowed: a number > 0 and < 1.'],
    ['training.evaluationBatches', 0, 'training.evaluationBatches is 0; allowed: an integer >= 1 and <= 9007199254740991.'],
    ['seeds', [], 'seeds is []; allowed: a non-empty list of integers.'],
    ['seeds', [1, 1], 'seeds is [1,1]; allowed: distinct integers.'],
    ['seeds', [-1], 'seeds[0] is -1; allowed: an integer >= 0 and <= 9007199254740991.'],
    ['seeds', [1e20], 'seeds[0] is 100000000000000000000; allowed: an integer >= 0 and <= 9007199254740991.'],
    ['targetFlopsPerToken', 0, 'targetFlopsPerToken is 0; allowed: a number > 0.'],
    ['models', [], 'models is []; allowed: a non-empty list of models.'],
    ['models', [{ architecture: 'mamba' }], 'models[0].architecture is "mamba"; allowed: transformer, gmlp, gshard, switch, base, hash, smlp.'],
    ['models', [{ architecture: 'switch' }, { architecture: 'switch' }], 'models[1].name is "switch"; allowed: a name no other model of the suite has'],
    ['models', [{ architecture: 'switch', name: 'a b' }], 'models[0].name is "a b"; allowed: letters, digits'],
    ['models', [{ architecture: 'switch', config: { seqLen: 8 } }], 'models[0].config.seqLen is 8; allowed: no value here: it follows from data.tokenizer and data.seqLen.'],
    ['model', { vocabSize: 100 }, 'model.vocabSize is 100; allowed: no value here'],
  ];
  for (const [field, value, message] of cases) {
    it(`rejects ${field} = ${JSON.stringify(value)}`, () => {
      expect(() => validateSuite(smokeWith(field, value), 'smoke.yaml')).toThrow(message);
    });
  }
});

describe('resolveSuitePath', () => {
  it('rejects a folder', () => {
    expect(() => resolveSuitePath(suitesFolder())).toThrow(`Suite "${suitesFolder()}" is a folder; allowed: a built-in suite (smoke, quick, paper) or a .yaml, .yml or .json file.`);
  });
});

describe('planModels', () => {
  it('fills vocabulary and sequence length from the data section', () => {
    const plans = planModels(validateSuite(smoke, 'smoke.yaml'), ['transformer']);
    expect(plans).toHaveLength(1);
    expect(plans[0].config).toMatchObject({ vocabSize: 256, seqLen: 16, dModel: 16, layers: 2 });
    expect(plans[0].accounting.forwardFlopsPerToken).toBeGreaterThan(0);
  });

  it('rejects an options block the architecture does not read', () => {
    const models = [
      { architecture: 'transformer' },
      { architecture: 'switch', config: { smlp: { smoe: { routing: 'partial-prediction' } } } },
    ];
    expect(() => planModels(validateSuite(smokeWith('models', models), 'smoke.yaml'), null)).toThrow(
      'Suite smoke, model "switch" (switch): models[1].config.smlp: the switch architecture does not read "smlp" options; it reads "switch". Remove it or change the architecture.',
    );
    const transformer = [{ architecture: 'transformer', config: { gmlp: { spatialInitEpsilon: 0.01 } } }];
    expect(() => planModels(validateSuite(smokeWith('models', transformer), 'smoke.yaml'), null)).toThrow('it reads none.');
    // sMLP's dense blocks are gMLP blocks, so it reads both.
    const smlp = [{ architecture: 'smlp', config: { gmlp: { spatialInitEpsilon: 0.01 }, smlp: {} } }];
    expect(planModels(validateSuite(smokeWith('models', smlp), 'smoke.yaml'), null)).toHaveLength(1);
  });

  it('reports config errors in suite order', () => {
    const models = [
      { architecture: 'gmlp', config: { gmlp: { spatialInit: 0.1 } } },
      { architecture: 'gshard', config: { gshard: { capacityFator: 2 } } },
    ];
    expect(() => planModels(validateSuite(smokeWith('models', models), 'smoke.yaml'), null)).toThrow(/^Suite smoke, model "gmlp" \(gmlp\): models\[0\]\.config\.gmlp\.spatialInit: /);
  });

  it('names each seed when the suite has several', () => {
    const plans = planModels(validateSuite(smokeWith('seeds', [3, 4]), 'smoke.yaml'), ['gmlp']);
    expect(plans.map((plan) => [plan.name, plan.seed])).toEqual([
      ['gmlp-seed3', 3],
      ['gmlp-seed4', 4],
    ]);
  });

  it('matches compute to the target within the tolerance', () => {
    const suite = validateSuite(smokeWith('targetFlopsPerToken', 40000), 'smoke.yaml');
    for (const plan of planModels(suite, ['transformer', 'gmlp', 'switch'])) {
      expect(Math.abs(plan.accounting.forwardFlopsPerToken - 40000) / 40000).toBeLessThanOrEqual(0.05);
      expect(plan.flopsError).not.toBeNull();
    }
  });

  it.each(BUILTIN_SUITES)('plans every model of the built-in suite %s', (name) => {
    const suite = loadSuite(join(suitesFolder(), `${name}.yaml`));
    const plans = planModels(suite, null);
    expect(plans.map((plan) => plan.architecture).sort()).toEqual(['base', 'gmlp', 'gshard', 'hash', 'smlp', 'switch', 'transformer']);
    const target = suite.targetFlopsPerToken;
    if (target === null) return;
    for (const plan of plans) {
      const error = Math.abs(plan.accounting.forwardFlopsPerToken - target) / target;
      expect(error, plan.architecture).toBeLessThanOrEqual(suite.flopsTolerance);
    }
  });

  it('rejects an unknown --only name', () => {
    expect(() => planModels(validateSuite(smoke, 'smoke.yaml'), ['mamba'])).toThrow(
      '--only: "mamba" is neither a model name nor an architecture of suite smoke. Valid: transformer, gmlp',
    );
  });

  it('names the model whose config is invalid', () => {
    const suite = validateSuite(smokeWith('models', [{ architecture: 'transformer', config: { heads: 3 } }]), 'smoke.yaml');
    expect(() => planModels(suite, null)).toThrow(/^Suite smoke, model "transformer" \(transformer\): .*heads/);
  });
});

describe('backendMismatchWarning', () => {
  const paper = loadSuite(join(suitesFolder(), 'paper.yaml'));

  it.each(['wasm', 'cpu'])('warns when the paper suite runs on %s', (backend) => {
    expect(backendMismatchWarning(paper, backend)).toBe(
      `Warning: suite paper is sized for the tensorflow backend on a GPU, and backend ${backend} runs it. ` +
        'Expect far fewer steps in the same training time, or a failure when its models do not fit in memory. ' +
        'On a CPU, run the quick suite instead.',
    );
  });

  it('stays silent on the tensorflow backend', () => {
    expect(backendMismatchWarning(paper, 'tensorflow')).toBeNull();
  });

  it('stays silent for suites not written for tensorflow', () => {
    const quick = loadSuite(join(suitesFolder(), 'quick.yaml'));
    expect(backendMismatchWarning(quick, 'wasm')).toBeNull();
    expect(backendMismatchWarning(quick, 'cpu')).toBeNull();
  });
});

import type { EvaluationPoint, ModelRun, RoutingPoint, RunContext } from '../src/index.js';

/** The run context of the hand-made test runs. */
export const testRun: RunContext = {
  runId: 'r1',
  corpus: 'hand-made',
  backend: 'cpu',
  hardware: 'test',
  versions: {},
  gitSha: 'abc',
  gitDirty: false,
  date: '2026-01-01T00:00:00Z',
};

/** Builds evaluations from [trainingSeconds, perplexity] pairs, at 1000 tokens per second and one step per second. */
export function evaluations(points: Array<[number, number]>): EvaluationPoint[] {
  return points.map(([seconds, perplexity]) => ({
    step: seconds,
    tokens: seconds * 1000,
    trainingSeconds: seconds,
    validationLoss: Math.log(perplexity),
    perplexity,
    bitsPerByte: Math.log2(perplexity),
  }));
}

/** Builds a model run with the given curve; everything else has plain defaults that `overrides` may replace. */
export function modelRun(name: string, curve: Array<[number, number]>, overrides: Partial<ModelRun> = {}): ModelRun {
  return {
    name,
    architecture: name,
    seed: 1,
    status: 'done',
    totalParameters: 1_000_000,
    activeParametersPerToken: 500_000,
    forwardFlopsPerToken: 1000,
    evaluations: evaluations(curve),
    steps: [],
    routing: [],
    ...overrides,
  };
}

/** Routing points of one layer with the same load at every step from 1 to `steps`. */
export function routing(layer: string, steps: number, tokensPerExpert: number[], droppedFraction = 0): RoutingPoint[] {
  return Array.from({ length: steps }, (_, index) => ({
    step: index + 1,
    layer,
    tokensPerExpert,
    droppedFraction,
    idleExperts: tokensPerExpert.filter((value) => value === 0).length,
  }));
}

/** Seven models with smooth synthetic curves and routing statistics for the MoE ones, at the given seeds. */
export function sampleModels(seeds: number[] = [1]): ModelRun[] {
  const specs: Array<{ name: string; rate: number; flops: number; experts: number; k?: number }> = [
    { name: 'transformer', rate: 0.05, flops: 4e6, experts: 0 },
    { name: 'gmlp', rate: 0.045, flops: 3.5e6, experts: 0 },
    { name: 'gshard', rate: 0.06, flops: 4.5e6, experts: 4, k: 2 },
    { name: 'switch', rate: 0.065, flops: 4e6, experts: 4 },
    { name: 'base', rate: 0.055, flops: 4e6, experts: 4 },
    { name: 'hash', rate: 0.048, flops: 4e6, experts: 4 },
    { name: 'smlp', rate: 0.09, flops: 3.8e6, experts: 4 },
  ];
  return seeds.flatMap((seed) =>
    specs.map((spec) => {
      const rate = spec.rate * (1 + 0.03 * (seed - 1));
      const curve: Array<[number, number]> = Array.from({ length: 7 }, (_, index) => {
        const seconds = 10 * index;
        return [seconds, 4 + 250 * Math.exp(-rate * seconds)];
      });
      const routingPoints =
        spec.experts === 0
          ? []
          : ['block0.moe', 'block1.moe'].flatMap((layer, layerIndex) =>
              Array.from({ length: 40 }, (_, step) => {
                // The second layer of Switch drifts towards expert 0 to exercise the collapse warning.
                const skew = spec.name === 'switch' && layerIndex === 1 ? step / 40 : 0;
                const load = [64 + 192 * skew, 64 - 64 * skew, 64 - 64 * skew, 64 - 64 * skew].map((value) => value * (spec.k ?? 1));
                return {
                  step: step + 1,
                  layer,
                  tokensPerExpert: load,
                  droppedFraction: 0.1 * skew + 0.01 * layerIndex,
                  idleExperts: load.filter((value) => value === 0).length,
                };
              }),
            );
      return modelRun(spec.name, curve, {
        seed,
        forwardFlopsPerToken: spec.flops,
        choicesPerToken: spec.k ?? 1,
        totalParameters: spec.experts === 0 ? 1.2e6 : 3.1e6,
        activeParametersPerToken: 1.1e6,
        routing: routingPoints,
      });
    }),
  );
}

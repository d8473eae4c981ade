import type { EvaluationPoint, ModelRun, RoutingPoint } from '../src/index.js';

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

/** A model run with the given curve; everything else has plain defaults that `overrides` may replace. */
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

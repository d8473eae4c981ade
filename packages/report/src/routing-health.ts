/**
 * Routing health of one MoE model run: expert load, dropped tokens, idle experts, router collapse.
 */
import { displayName } from './labels.js';
import type { ModelRun, RoutingPoint } from './types.js';

/** Health figures of one MoE layer. */
export interface LayerHealth {
  layer: string;
  /** Share of the layer's routing choices each expert received over the last quarter of routed steps, [experts]. */
  finalLoadShare: number[];
  /** Largest share of tokens one expert received over the last quarter (choice share x k, at most 1). */
  maxTokenShare: number;
  /** Expert with the largest share. */
  busiestExpert: number;
  /** Mean dropped fraction over all routed steps. */
  meanDroppedFraction: number;
  /** Dropped fraction at the last routed step. */
  finalDroppedFraction: number;
  /** Mean number of idle experts per step over the last quarter. */
  meanIdleExperts: number;
  /** Experts that received no token at any step of the last quarter. */
  idleThroughout: number[];
}

/** Routing health of one MoE model run. */
export interface RoutingHealth {
  name: string;
  seed: number;
  numExperts: number;
  /** Routing choices per token the token shares were computed with. */
  choicesPerToken: number;
  /** Steps with routing statistics. */
  routedSteps: number;
  layers: LayerHealth[];
  /** One warning per layer where one expert took more than `collapseThreshold` of the tokens; empty when healthy. */
  collapseWarnings: string[];
}

/**
 * Summarises the routing statistics of `run`, or returns null for a run without any (a dense model).
 * The last quarter of routed steps (at least one step) stands for the state the router ended in.
 *
 * @param collapseThreshold share of tokens one expert must exceed in a layer to raise a router-collapse
 *   warning (default 0.5: one expert takes most tokens).
 */
export function routingHealth(run: ModelRun, collapseThreshold = 0.5): RoutingHealth | null {
  if (!(collapseThreshold > 0 && collapseThreshold < 1)) {
    throw new Error(`routingHealth: collapseThreshold is ${collapseThreshold}; it must lie in (0, 1).`);
  }
  if (run.routing.length === 0) return null;
  const choicesPerToken = run.choicesPerToken ?? 1;
  if (!(Number.isInteger(choicesPerToken) && choicesPerToken >= 1)) {
    throw new Error(`routingHealth: ${run.name} has choicesPerToken ${choicesPerToken}; it must be an integer >= 1.`);
  }

  const steps = [...new Set(run.routing.map((point) => point.step))].sort((a, b) => a - b);
  const lastQuarterStart = steps[Math.floor((steps.length * 3) / 4)] ?? steps[steps.length - 1];
  const numExperts = Math.max(...run.routing.map((point) => point.tokensPerExpert.length));

  const layers: LayerHealth[] = [];
  const collapseWarnings: string[] = [];
  for (const [layer, points] of groupByLayer(run.routing)) {
    const ordered = [...points].sort((a, b) => a.step - b.step);
    const finalPoints = ordered.filter((point) => point.step >= lastQuarterStart);

    const finalLoad = sumLoads(finalPoints, numExperts);
    const finalChoices = finalLoad.reduce((sum, value) => sum + value, 0);
    const finalLoadShare = finalLoad.map((value) => (finalChoices > 0 ? value / finalChoices : 0));
    const busiestExpert = finalLoadShare.indexOf(Math.max(...finalLoadShare));
    const maxTokenShare = Math.min(1, finalLoadShare[busiestExpert] * choicesPerToken);

    const health: LayerHealth = {
      layer,
      finalLoadShare,
      maxTokenShare,
      busiestExpert,
      meanDroppedFraction: mean(ordered.map((point) => point.droppedFraction)),
      finalDroppedFraction: ordered[ordered.length - 1].droppedFraction,
      meanIdleExperts: mean(finalPoints.map((point) => point.idleExperts)),
      idleThroughout: finalLoad.flatMap((value, expert) => (value === 0 ? [expert] : [])),
    };
    layers.push(health);

    if (finalChoices > 0 && maxTokenShare > collapseThreshold) {
      // HASH routes by a fixed token-id table, so a busy expert there reflects token frequencies, not a learned collapse.
      const cause = run.architecture === 'hash' ? 'load imbalance of the fixed hash routing' : 'router collapse';
      collapseWarnings.push(
        `${displayName(run.name)} (seed ${run.seed}) ${layer}: expert ${busiestExpert} took ${(maxTokenShare * 100).toFixed(1)}% of the tokens ` +
          `over the last quarter of training (${cause}).`,
      );
    }
  }
  return { name: run.name, seed: run.seed, numExperts, choicesPerToken, routedSteps: steps.length, layers, collapseWarnings };
}

/** Groups routing points by layer, keeping the order in which layers first appear. */
export function groupByLayer(points: readonly RoutingPoint[]): Map<string, RoutingPoint[]> {
  return groupBy(points, (point) => point.layer);
}

/** Groups items by `key`, keeping the order in which keys first appear and the items' order within a group. */
export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

function sumLoads(points: readonly RoutingPoint[], numExperts: number): number[] {
  const total = new Array<number>(numExperts).fill(0);
  for (const point of points) point.tokensPerExpert.forEach((value, expert) => (total[expert] += value));
  return total;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

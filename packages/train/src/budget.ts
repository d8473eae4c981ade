/** Units a budget or an interval can be counted in. */
export const BUDGET_UNITS = ['seconds', 'tokens', 'steps'] as const;

/** A unit of training progress: wall-clock training seconds, training tokens, or optimiser steps. */
export type BudgetUnit = (typeof BUDGET_UNITS)[number];

/** An amount of training progress, used both for the budget and for evaluation and checkpoint intervals. */
export interface Budget {
  /** Unit counted. Seconds are training time only, so evaluation and checkpoints are excluded. */
  unit: BudgetUnit;
  /** How much of it, > 0 (an integer for tokens and steps). */
  amount: number;
}

/** Progress counters of a training run. */
export interface Progress {
  /** Optimiser steps done. */
  steps: number;
  /** Training tokens consumed (batch x sequence length per step). */
  tokens: number;
  /** Training wall-clock seconds, evaluation and checkpoint time excluded. */
  seconds: number;
}

/** Checks a budget or interval and returns it; the message names `field`, the value and what is allowed. */
export function validateBudget(field: string, budget: unknown): Budget {
  if (typeof budget !== 'object' || budget === null) {
    throw new Error(`${field} must be an object { unit, amount }, received ${JSON.stringify(budget)}`);
  }
  const { unit, amount } = budget as Record<string, unknown>;
  if (typeof unit !== 'string' || !(BUDGET_UNITS as readonly string[]).includes(unit)) {
    throw new Error(`${field}.unit must be one of ${BUDGET_UNITS.join(', ')}, received ${JSON.stringify(unit)}`);
  }
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount <= 0) {
    throw new Error(`${field}.amount must be a number > 0, received ${JSON.stringify(amount)}`);
  }
  if (unit !== 'seconds' && !Number.isInteger(amount)) {
    throw new Error(`${field}.amount must be an integer when counting ${unit}, received ${amount}`);
  }
  return { unit: unit as BudgetUnit, amount };
}

/** Returns the counter of `progress` that `unit` measures. */
export function progressIn(unit: BudgetUnit, progress: Progress): number {
  if (unit === 'seconds') return progress.seconds;
  if (unit === 'tokens') return progress.tokens;
  return progress.steps;
}

/** Returns the fraction of `budget` used by `progress`, clamped to [0, 1]. */
export function budgetFraction(budget: Budget, progress: Progress): number {
  return Math.min(1, progressIn(budget.unit, progress) / budget.amount);
}

/** Returns the first multiple of `interval.amount` strictly above the current counter. */
export function nextMark(interval: Budget, progress: Progress): number {
  const current = progressIn(interval.unit, progress);
  return (Math.floor(current / interval.amount) + 1) * interval.amount;
}

import type { VariantName } from './variants.js';

/** One measured step, prepared on the active backend by a case's `prepare`. */
export interface PreparedStep {
  /** Runs one step to completion (reads its outputs back, so asynchronous backends finish too). */
  run(): void;
  /** Frees the tensors `prepare` made. */
  dispose(): void;
}

/** A named benchmark: one kind of step (a layer, a training step, a kernel) at fixed sizes. */
export interface BenchCase {
  /** Unique name, used by `--filter`: lowercase words joined by dashes, e.g. `dense-ffn`. */
  name: string;
  /** One line saying what a step does and at which sizes. */
  description: string;
  /** Tokens a step processes, for tokens/s. */
  tokensPerStep: number;
  /** Floating-point operations in a step (multiply and add counted apart), for GFLOP/s. */
  flopsPerStep: number;
  /**
   * The variants this case runs on. Default: `DEFAULT_CASE_VARIANTS` (wasm-native, wasm,
   * tensorflow). List wasm-stock and cpu too only when a step takes a few seconds at most there.
   */
  variants?: readonly VariantName[];
  /**
   * Builds the inputs and weights on the active backend (already started by the runner) and
   * returns the step. Draw every random value from a seeded `Rng`.
   */
  prepare(): PreparedStep;
}

const cases = new Map<string, BenchCase>();

/** Adds a case to the registry. Throws when the name is malformed or already taken. */
export function registerCase(benchCase: BenchCase): void {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(benchCase.name)) {
    throw new Error(`Bench case name "${benchCase.name}" must be lowercase words joined by dashes`);
  }
  if (cases.has(benchCase.name)) throw new Error(`Bench case "${benchCase.name}" is already registered`);
  cases.set(benchCase.name, benchCase);
}

/** Returns every registered case, in registration order. */
export function listCases(): BenchCase[] {
  return [...cases.values()];
}

/**
 * Selects the cases whose name contains any of `filters` (all cases when `filters` is empty).
 * Throws when a filter matches nothing, listing the registered names.
 */
export function selectCases(filters: readonly string[]): BenchCase[] {
  const all = listCases();
  if (filters.length === 0) return all;
  for (const filter of filters) {
    if (!all.some((benchCase) => benchCase.name.includes(filter))) {
      throw new Error(
        `--filter "${filter}" matches no bench case. Registered cases: ${all.map((c) => c.name).join(', ')}`,
      );
    }
  }
  return all.filter((benchCase) => filters.some((filter) => benchCase.name.includes(filter)));
}

/** Options of the learning-rate schedule: linear warmup, then cosine decay to a floor. */
export interface ScheduleOptions {
  /** Learning rate at the end of warmup. Default 1e-3. */
  peakLearningRate?: number;
  /** Learning rate reached at the end of the budget. Default 0.1 x peakLearningRate. */
  minLearningRate?: number;
  /** Steps of linear warmup from peak / warmupSteps to the peak. Default 100; 0 turns warmup off. */
  warmupSteps?: number;
}

/** A schedule with every default filled in. */
export interface ResolvedSchedule {
  peakLearningRate: number;
  minLearningRate: number;
  warmupSteps: number;
}

/** Fills in defaults and validates a schedule, naming the field and value on error. */
export function resolveSchedule(options: ScheduleOptions = {}): ResolvedSchedule {
  const peakLearningRate = options.peakLearningRate ?? 1e-3;
  if (!Number.isFinite(peakLearningRate) || peakLearningRate <= 0) {
    throw new RangeError(`schedule.peakLearningRate must be a number > 0, received ${peakLearningRate}`);
  }
  const minLearningRate = options.minLearningRate ?? 0.1 * peakLearningRate;
  if (!Number.isFinite(minLearningRate) || minLearningRate < 0 || minLearningRate > peakLearningRate) {
    throw new RangeError(
      `schedule.minLearningRate must be a number in [0, peakLearningRate = ${peakLearningRate}], received ${minLearningRate}`,
    );
  }
  const warmupSteps = options.warmupSteps ?? 100;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`schedule.warmupSteps must be an integer >= 0, received ${warmupSteps}`);
  }
  return { peakLearningRate, minLearningRate, warmupSteps };
}

/**
 * Returns the learning rate of step `step` (0-based).
 *
 * During warmup (step < warmupSteps) it rises linearly: peak x (step + 1) / warmupSteps. After it,
 * the rate follows a half cosine from the peak down to the floor over `decayProgress`, the fraction
 * in [0, 1] of the budget that remains after warmup and has been used. Progress rather than a step
 * count drives the decay because a budget in seconds or tokens does not fix the number of steps in
 * advance. For a step budget the training loop passes (step - warmupSteps) / (totalSteps - warmupSteps).
 */
export function learningRateAt(schedule: ResolvedSchedule, step: number, decayProgress: number): number {
  if (step < schedule.warmupSteps) {
    return (schedule.peakLearningRate * (step + 1)) / schedule.warmupSteps;
  }
  const progress = Math.min(1, Math.max(0, decayProgress));
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return schedule.minLearningRate + (schedule.peakLearningRate - schedule.minLearningRate) * cosine;
}

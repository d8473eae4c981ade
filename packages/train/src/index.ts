export { AdamW, type AdamWOptions, type AdamWState } from './adamw.js';
export { learningRateAt, resolveSchedule, type ResolvedSchedule, type ScheduleOptions } from './schedule.js';
export { clipByGlobalNorm, clipScale, type ClippedGradients, type ClipScale } from './clip.js';
export { maskedCrossEntropy, tokenNegativeLogLikelihood } from './loss.js';
export { BUDGET_UNITS, budgetFraction, nextMark, progressIn, validateBudget, type Budget, type BudgetUnit, type Progress } from './budget.js';
export type { BatchSource, TokenBatch } from './batches.js';
export { evaluate, type EvaluationResult } from './evaluate.js';
export { loadCheckpoint, readCheckpointInfo, writeCheckpoint, type CheckpointInfo, type LoopState } from './checkpoint.js';
export { train, type EvaluationMetrics, type StepMetrics, type TrainOptions, type TrainResult } from './loop.js';

import type { Budget, EvaluationMetrics, StepMetrics, TrainResult } from '@moebench/train';

/** Output stream for progress: a terminal gets a redrawn bar, anything else plain log lines. */
export interface ProgressOutput {
  write(text: string): void;
  /** True when the output is a terminal. */
  isTTY?: boolean;
  /** Terminal width in columns. */
  columns?: number;
}

const BAR_WIDTH = 24;
const LOG_EVERY_FRACTION = 0.1;

/**
 * Reports training progress of one model at a time. On a terminal it redraws one line in place with
 * a bar, step, loss, tokens/s and the estimated time left. Elsewhere it prints a log line at every
 * tenth of the budget and at every evaluation.
 */
export class ProgressReporter {
  private label = '';
  private budget: Budget = { unit: 'steps', amount: 1 };
  private startedAt = 0;
  private startFraction = 0;
  private nextLogFraction = 0;
  private lastStep: StepMetrics | null = null;
  private lastEvaluation: EvaluationMetrics | null = null;
  private readonly tty: boolean;

  constructor(private readonly output: ProgressOutput) {
    this.tty = output.isTTY === true;
  }

  /** Prints a line that is not progress (a start, a skip, a result), above the bar on a terminal. */
  log(line: string): void {
    if (this.tty) this.output.write('\r\x1b[2K');
    this.output.write(`${line}\n`);
    if (this.tty && this.lastStep !== null) this.drawBar();
  }

  /** Starts reporting a model. */
  startModel(label: string, budget: Budget, resumedFraction = 0): void {
    this.label = label;
    this.budget = budget;
    this.startedAt = Date.now();
    this.startFraction = resumedFraction;
    this.nextLogFraction = Math.floor(resumedFraction / LOG_EVERY_FRACTION + 1) * LOG_EVERY_FRACTION;
    this.lastStep = null;
    this.lastEvaluation = null;
  }

  /** Reports a step. */
  step(metrics: StepMetrics): void {
    this.lastStep = metrics;
    if (this.tty) {
      this.drawBar();
      return;
    }
    const fraction = this.fraction(metrics);
    if (fraction >= this.nextLogFraction) {
      this.nextLogFraction = Math.floor(fraction / LOG_EVERY_FRACTION + 1) * LOG_EVERY_FRACTION;
      this.output.write(`${this.label}: ${this.describeStep(metrics)}\n`);
    }
  }

  /** Reports an evaluation. */
  evaluation(metrics: EvaluationMetrics): void {
    this.lastEvaluation = metrics;
    this.log(
      `${this.label}: eval at step ${metrics.step}: val loss ${metrics.loss.toFixed(4)}, ppl ${formatNumber(metrics.perplexity)}, ` +
        `${metrics.bitsPerByte.toFixed(3)} bits/byte (${metrics.evaluationSeconds.toFixed(1)} s)`,
    );
  }

  /** Ends the model's line and prints its result. */
  finishModel(result: TrainResult): void {
    if (this.tty) this.output.write('\r\x1b[2K');
    const evaluation = result.lastEvaluation;
    const ppl = evaluation ? `, val ppl ${formatNumber(evaluation.perplexity)}` : '';
    const reason = result.divergence ? ` at step ${result.divergence.step} (loss ${result.divergence.loss}, grad norm ${result.divergence.gradientNorm})` : '';
    const rate = result.trainingSeconds > 0 ? `, ${formatNumber(result.tokens / result.trainingSeconds)} tok/s` : '';
    this.output.write(`${this.label}: ${result.status}${reason} after ${result.steps} steps, ${formatDuration(result.trainingSeconds)} training${rate}${ppl}\n`);
    this.lastStep = null;
  }

  /** Ends the model's line after its training failed; the caller logs the failure itself. */
  failModel(): void {
    if (this.tty) this.output.write('\r\x1b[2K');
    this.lastStep = null;
  }

  private fraction(metrics: StepMetrics): number {
    let counter = metrics.step;
    if (this.budget.unit === 'seconds') counter = metrics.trainingSeconds;
    if (this.budget.unit === 'tokens') counter = metrics.tokens;
    return Math.min(1, counter / this.budget.amount);
  }

  private secondsLeft(metrics: StepMetrics): number {
    const fraction = this.fraction(metrics);
    if (this.budget.unit === 'seconds') return Math.max(0, this.budget.amount - metrics.trainingSeconds);
    const done = fraction - this.startFraction;
    if (done <= 0) return NaN;
    const elapsed = (Date.now() - this.startedAt) / 1000;
    return (elapsed * (1 - fraction)) / done;
  }

  private describeStep(metrics: StepMetrics): string {
    return this.stepFields(metrics).join(', ');
  }

  private stepFields(metrics: StepMetrics): string[] {
    return [
      `step ${metrics.step}`,
      `loss ${metrics.loss.toFixed(4)}`,
      `${formatNumber(metrics.tokensPerSecond)} tok/s`,
      `${formatDuration(this.secondsLeft(metrics))} left`,
    ];
  }

  private drawBar(): void {
    if (this.lastStep === null) return;
    const fraction = this.fraction(this.lastStep);
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
    const fields = this.stepFields(this.lastStep);
    if (this.lastEvaluation) fields.push(`val ppl ${formatNumber(this.lastEvaluation.perplexity)}`);
    const columns = this.output.columns ?? 120;
    this.output.write(`\r\x1b[2K${fitLine(`${this.label} [${bar}] ${Math.floor(fraction * 100)}%`, fields, columns - 1)}`);
  }
}

/**
 * Joins `head` and as many of `fields` as fit in `width` characters, separated by ", ", dropping
 * whole fields from the end so that no number is cut. A head wider than `width` is cut at `width`.
 */
export function fitLine(head: string, fields: readonly string[], width: number): string {
  if (head.length >= width) return head.slice(0, Math.max(0, width));
  let line = head;
  for (const [index, field] of fields.entries()) {
    const next = `${line}${index === 0 ? ' ' : ', '}${field}`;
    if (next.length > width) break;
    line = next;
  }
  return line;
}

/** Suffixes of thousands, millions, billions, trillions and quadrillions. */
const THOUSANDS_UNITS = ['k', 'M', 'G', 'T', 'P'];

/**
 * Formats a number: below 10,000 with four significant digits and no trailing zeros, above it with
 * three significant digits and a k, M, G, T or P suffix. The unit is chosen after rounding, so
 * 999,600 reads 1.00M, not 1.00e+3k.
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(Number(value.toPrecision(4))) < 1e4) {
    const text = value.toPrecision(4);
    return text.includes('.') && !text.includes('e') ? text.replace(/\.?0+$/, '') : text;
  }
  let scaled = value / 1e3;
  let unit = 0;
  while (Math.abs(Number(scaled.toPrecision(3))) >= 1000 && unit < THOUSANDS_UNITS.length - 1) {
    scaled /= 1e3;
    unit++;
  }
  return `${scaled.toPrecision(3)}${THOUSANDS_UNITS[unit]}`;
}

/** Formats seconds as `m:ss` or `h:mm:ss`; `?` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${secs}` : `${minutes}:${secs}`;
}

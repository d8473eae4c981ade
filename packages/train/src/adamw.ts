import { ADAMW_KERNEL, hasKernel, tf, type AdamWKernelAttrs } from '@moebench/backend';

/** Options of `AdamW`. */
export interface AdamWOptions {
  /** Exponential decay of the first-moment estimate. Default 0.9. */
  beta1?: number;
  /** Exponential decay of the second-moment estimate. Default 0.95. */
  beta2?: number;
  /** Added to the root of the second moment before dividing. Default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay coefficient, multiplied by the step's learning rate. Default 0.1. */
  weightDecay?: number;
  /**
   * Predicate selecting the variables that decay. Default: variables of rank 2 or more (matrices and embeddings), so that
   * biases, norm gains and other vectors are not pulled towards zero.
   */
  decays?: (variable: tf.Variable) => boolean;
}

/** Moments and step count of an `AdamW` optimiser, as plain arrays in variable order. */
export interface AdamWState {
  /** Number of updates applied so far (the t of the bias corrections). */
  step: number;
  /** First-moment estimate of each variable. */
  firstMoments: Float32Array[];
  /** Second-moment estimate of each variable. */
  secondMoments: Float32Array[];
}

/** The update's folded constants (see `AdamW.apply`), as float64 numbers; both paths round them to float32. */
type AdamWConstants = Omit<AdamWKernelAttrs, 'decays'>;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter, "Decoupled Weight Decay Regularization").
 *
 * One update with learning rate lr, for each variable p with gradient g:
 *   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
 *   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon) - lr * weightDecay * p
 * The decay term reads p before the update and never passes through the moments, which is what
 * separates AdamW from Adam with an L2 penalty. The decay is scaled by the learning rate, as in
 * PyTorch's AdamW, so that it follows the schedule.
 */
export class AdamW {
  /** Variables this optimiser updates, in the order gradients are given. */
  readonly variables: readonly tf.Variable[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly decayMask: boolean[];
  private readonly firstMoments: tf.Variable[];
  private readonly secondMoments: tf.Variable[];
  private stepCount = 0;

  /** Creates moments at zero for each of `variables`; validates every option. */
  constructor(variables: readonly tf.Variable[], options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.95;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.1;
    checkRange('beta1', this.beta1, 0, 1, false);
    checkRange('beta2', this.beta2, 0, 1, false);
    checkRange('epsilon', this.epsilon, 0, Infinity, false);
    checkRange('weightDecay', this.weightDecay, 0, Infinity, true);

    const decays = options.decays ?? ((variable: tf.Variable) => variable.rank >= 2);
    this.variables = [...variables];
    this.decayMask = this.variables.map((variable) => decays(variable));
    // tidy releases the zero tensors; the variables survive it.
    this.firstMoments = this.variables.map((variable) => tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
    this.secondMoments = this.variables.map((variable) => tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.stepCount;
  }

  /**
   * Applies one update. `gradients[i]` is the gradient of `variables[i]`; the caller keeps ownership
   * of the gradients. `gradientScale` (default 1) multiplies every gradient before it enters the
   * moments, which is how a clipping factor from `clipScale` is applied without a scaled copy of
   * each gradient.
   *
   * The constants are folded so that each variable costs 12 kernels (13 with decay) and no
   * per-variable scalar uploads. With s = gradientScale, c1 = 1 - beta1^t and c2 = 1 - beta2^t:
   *   m <- beta1 m + ((1 - beta1) s) g;  v <- beta2 v + ((1 - beta2) s^2) g^2
   *   p <- (1 - lr weightDecay) p - (lr sqrt(c2) / c1) m / (sqrt(v) + epsilon sqrt(c2))
   * which is the update in the class comment with numerator and denominator multiplied by sqrt(c2).
   * When the backend has the native ADAMW_KERNEL (wasm with the addon), the whole update is that
   * one kernel, with the same constants and float32 operations in the same order.
   */
  apply(gradients: readonly tf.Tensor[], learningRate: number, gradientScale = 1): void {
    if (gradients.length !== this.variables.length) {
      throw new Error(`AdamW.apply: expected ${this.variables.length} gradients (one per variable), received ${gradients.length}`);
    }
    if (!Number.isFinite(learningRate) || learningRate < 0) {
      throw new RangeError(`AdamW.apply: learningRate must be a finite number >= 0, received ${learningRate}`);
    }
    if (!Number.isFinite(gradientScale) || gradientScale <= 0) {
      throw new RangeError(`AdamW.apply: gradientScale must be a finite number > 0, received ${gradientScale}`);
    }
    gradients.forEach((gradient, i) => {
      const variable = this.variables[i];
      if (!arraysEqual(gradient.shape, variable.shape)) {
        throw new Error(
          `AdamW.apply: gradient ${i} has shape [${gradient.shape}] but variable "${variable.name}" has shape [${variable.shape}]`,
        );
      }
    });
    this.stepCount += 1;
    const t = this.stepCount;
    const rootSecondCorrection = Math.sqrt(1 - this.beta2 ** t);
    const constants: AdamWConstants = {
      beta1: this.beta1,
      gradientWeight1: (1 - this.beta1) * gradientScale,
      beta2: this.beta2,
      gradientWeight2: (1 - this.beta2) * gradientScale * gradientScale,
      epsilon: this.epsilon * rootSecondCorrection,
      stepSize: (learningRate * rootSecondCorrection) / (1 - this.beta1 ** t),
      decayFactor: 1 - learningRate * this.weightDecay,
    };
    if (hasKernel(ADAMW_KERNEL) && this.allFloat32(gradients)) this.applyFused(gradients, constants);
    else this.applyComposite(gradients, constants);
  }

  /** Applies the update as one native kernel call for every variable (see the backend's ADAMW_KERNEL). */
  private applyFused(gradients: readonly tf.Tensor[], constants: AdamWConstants): void {
    const inputs: tf.NamedTensorMap = {};
    const decays: number[] = [];
    this.variables.forEach((variable, i) => {
      inputs[`param${i}`] = variable;
      inputs[`firstMoment${i}`] = this.firstMoments[i];
      inputs[`secondMoment${i}`] = this.secondMoments[i];
      inputs[`gradient${i}`] = gradients[i];
      decays.push(this.decayMask[i] && this.weightDecay > 0 ? 1 : 0);
    });
    const attrs: AdamWKernelAttrs = { ...constants, decays };
    const outputs = tf.engine().runKernel(ADAMW_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    this.variables.forEach((variable, i) => {
      variable.assign(outputs[3 * i]);
      this.firstMoments[i].assign(outputs[3 * i + 1]);
      this.secondMoments[i].assign(outputs[3 * i + 2]);
    });
    tf.dispose(outputs);
  }

  /** Applies the update as tfjs ops, for backends without the fused kernel: 12 kernels per variable, 13 with decay. */
  private applyComposite(gradients: readonly tf.Tensor[], constants: AdamWConstants): void {
    tf.tidy(() => {
      // One scalar per constant for the whole update, not one per variable and use.
      const beta1 = tf.scalar(constants.beta1);
      const gradientWeight1 = tf.scalar(constants.gradientWeight1);
      const beta2 = tf.scalar(constants.beta2);
      const gradientWeight2 = tf.scalar(constants.gradientWeight2);
      const epsilon = tf.scalar(constants.epsilon);
      const stepSize = tf.scalar(constants.stepSize);
      const keep = tf.scalar(constants.decayFactor);
      for (let i = 0; i < this.variables.length; i++) {
        const variable = this.variables[i];
        const gradient = gradients[i];
        const m = tf.add(tf.mul(this.firstMoments[i], beta1), tf.mul(gradient, gradientWeight1));
        const v = tf.add(tf.mul(this.secondMoments[i], beta2), tf.mul(tf.square(gradient), gradientWeight2));
        this.firstMoments[i].assign(m);
        this.secondMoments[i].assign(v);

        const update = tf.mul(tf.div(m, tf.add(tf.sqrt(v), epsilon)), stepSize);
        const decayed = this.decayMask[i] && this.weightDecay > 0 ? tf.mul(variable, keep) : variable;
        variable.assign(tf.sub(decayed, update));
      }
    });
  }

  private allFloat32(gradients: readonly tf.Tensor[]): boolean {
    return this.variables.every((variable, i) => variable.dtype === 'float32' && gradients[i].dtype === 'float32');
  }

  /** Copies the moments and step count out of the backend. */
  getState(): AdamWState {
    return {
      step: this.stepCount,
      firstMoments: this.firstMoments.map((moment) => moment.dataSync() as Float32Array).map((data) => Float32Array.from(data)),
      secondMoments: this.secondMoments.map((moment) => moment.dataSync() as Float32Array).map((data) => Float32Array.from(data)),
    };
  }

  /** Restores moments and step count saved by `getState` for the same variables. */
  setState(state: AdamWState): void {
    if (state.firstMoments.length !== this.variables.length || state.secondMoments.length !== this.variables.length) {
      throw new Error(
        `AdamW.setState: state contains moments for ${state.firstMoments.length} variables, the optimiser has ${this.variables.length}`,
      );
    }
    for (let i = 0; i < this.variables.length; i++) {
      const size = this.variables[i].size;
      if (state.firstMoments[i].length !== size || state.secondMoments[i].length !== size) {
        throw new Error(
          `AdamW.setState: moments of variable ${i} ("${this.variables[i].name}") have ${state.firstMoments[i].length} values, expected ${size}`,
        );
      }
      const shape = this.variables[i].shape;
      tf.tidy(() => {
        this.firstMoments[i].assign(tf.tensor(state.firstMoments[i], shape, 'float32'));
        this.secondMoments[i].assign(tf.tensor(state.secondMoments[i], shape, 'float32'));
      });
    }
    this.stepCount = state.step;
  }

  /** Releases the moment variables (not the model's variables). */
  dispose(): void {
    tf.dispose([...this.firstMoments, ...this.secondMoments]);
  }
}

function checkRange(name: string, value: number, low: number, high: number, lowInclusive: boolean): void {
  const aboveLow = lowInclusive ? value >= low : value > low;
  if (!Number.isFinite(value) || !aboveLow || value >= high) {
    const lowText = lowInclusive ? `>= ${low}` : `> ${low}`;
    const highText = high === Infinity ? '' : ` and < ${high}`;
    throw new RangeError(`AdamW option ${name} must be a number ${lowText}${highText}, received ${value}`);
  }
}

function arraysEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

import { Rng, tf } from '@moebench/backend';
import { ACTIVATIONS, applyActivation, type Activation } from './activation.js';
import { addGroupBias } from './ops.js';
import { requireInteger, requireNumber, requireOneOf } from './validate.js';

/** Options of `ExpertBank`. */
export interface ExpertBankOptions {
  /** Experts E. Required, >= 1. */
  numExperts: number;
  /** Model width d. Required, >= 1. */
  dModel: number;
  /** Hidden width f of each expert. Default: 4 * dModel. */
  hiddenSize?: number;
  /** Activation between the two projections. Default: 'gelu'. */
  activation?: Activation;
  /**
   * Scale s of the fan-in init: weights are drawn from a normal truncated at two standard deviations
   * with std sqrt(s / fanIn) (fanIn = d for W1, f for W2); biases start at zero. Default: 1.
   */
  initScale?: number;
  /** Random stream for the init, or a seed for one. Default: seed 0. */
  rng?: Rng | number | string;
  /**
   * Prefix of the variable names (`<name>/w1`, ...); tfjs needs variable names to be unique. Default:
   * none, so tfjs numbers the variables itself.
   */
  name?: string;
}

/**
 * E feed-forward experts stored as stacked weights, so that all experts run as one batched matmul:
 * W1 [E, d, f], b1 [E, f], W2 [E, f, d], b2 [E, d]; expert e computes act(x W1[e] + b1[e]) W2[e] + b2[e].
 */
export class ExpertBank {
  /** Experts E. */
  readonly numExperts: number;
  /** Model width d. */
  readonly dModel: number;
  /** Hidden width f. */
  readonly hiddenSize: number;
  /** Activation between the projections. */
  readonly activation: Activation;
  /** First projection, [E, d, f]. */
  readonly w1: tf.Variable;
  /** First bias, [E, f]. */
  readonly b1: tf.Variable;
  /** Second projection, [E, f, d]. */
  readonly w2: tf.Variable;
  /** Second bias, [E, d]. */
  readonly b2: tf.Variable;

  /** Creates the bank and its variables; validates every option first. */
  constructor(options: ExpertBankOptions) {
    const owner = 'ExpertBank';
    this.numExperts = requireInteger(owner, 'numExperts', options.numExperts, 1);
    this.dModel = requireInteger(owner, 'dModel', options.dModel, 1);
    this.hiddenSize = requireInteger(owner, 'hiddenSize', options.hiddenSize ?? 4 * this.dModel, 1);
    this.activation = requireOneOf(owner, 'activation', options.activation ?? 'gelu', ACTIVATIONS);
    const initScale = requireNumber(owner, 'initScale', options.initScale ?? 1, 0);
    const rng = options.rng instanceof Rng ? options.rng : new Rng(options.rng ?? 0);
    const name = options.name;

    const [e, d, f] = [this.numExperts, this.dModel, this.hiddenSize];
    this.w1 = ownVariable(rng.truncatedNormal([e, d, f], Math.sqrt(initScale / d)), name, 'w1');
    this.b1 = ownVariable(tf.zeros([e, f]), name, 'b1');
    this.w2 = ownVariable(rng.truncatedNormal([e, f, d], Math.sqrt(initScale / f)), name, 'w2');
    this.b2 = ownVariable(tf.zeros([e, d]), name, 'b2');
  }

  /** The bank's variables: w1, b1, w2, b2. */
  get trainableVariables(): tf.Variable[] {
    return [this.w1, this.b1, this.w2, this.b2];
  }

  /** Parameters of one expert: 2 d f + f + d. */
  parametersPerExpert(): number {
    return 2 * this.dModel * this.hiddenSize + this.hiddenSize + this.dModel;
  }

  /** Forward FLOPs one token spends in one expert: 2 x (d f + f d) multiply-adds, biases and activation not counted. */
  flopsPerTokenPerExpert(): number {
    return 4 * this.dModel * this.hiddenSize;
  }

  /** Runs every expert on its slots: buffer [E, C, d] -> [E, C, d]. */
  apply(buffer: tf.Tensor3D): tf.Tensor3D {
    const [e, , d] = buffer.shape;
    if (e !== this.numExperts || d !== this.dModel) {
      throw new RangeError(
        `ExpertBank.apply: buffer must have shape [${this.numExperts}, C, ${this.dModel}], received [${buffer.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => {
      const pre = addGroupBias(tf.matMul(buffer, this.w1), this.b1 as tf.Tensor2D); // [E, C, f]
      const hidden = applyActivation(pre, this.activation) as tf.Tensor3D;
      return addGroupBias(tf.matMul(hidden, this.w2), this.b2 as tf.Tensor2D); // [E, C, d]
    });
  }

  /** Releases the variables. */
  dispose(): void {
    tf.dispose(this.trainableVariables);
  }
}

/** Makes a trainable variable from `initial` and releases `initial`. */
function ownVariable(initial: tf.Tensor, prefix: string | undefined, field: string): tf.Variable {
  const variable = tf.variable(initial, true, prefix === undefined ? undefined : `${prefix}/${field}`);
  initial.dispose();
  return variable;
}

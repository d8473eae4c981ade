import { tf } from '@moebench/backend';
import { dense, denseSplit, gelu, layerNorm } from '@moebench/moe';
import { causalAttention, type RowOrder } from './attention.js';
import type { ParameterStore } from './parameters.js';

/**
 * Layer normalisation over the last axis with a learned scale (init 1) and shift (init 0). It runs
 * @moebench/moe's `layerNorm` (the one every architecture uses), whose scale and shift gradients sum rows with a matMul, because the
 * wasm backend reduces over a leading axis slowly.
 */
export class LayerNorm {
  private readonly gamma: tf.Variable;
  private readonly beta: tf.Variable;

  constructor(store: ParameterStore, name: string, width: number, private readonly epsilon: number) {
    this.gamma = store.constant(`${name}.gamma`, [width], 1);
    this.beta = store.constant(`${name}.beta`, [width], 0);
  }

  /** Normalises `x` [..., width]. */
  apply(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.gamma as tf.Tensor1D, this.beta as tf.Tensor1D, this.epsilon);
  }
}

/**
 * A dense layer y = x W + b on [tokens, in] inputs, run by @moebench/moe's `dense` (a plain matMul
 * and a bias add whose gradient sums rows with a matMul). A Transformer training step at the default
 * suite's size took about 390 ms with `tf.fused.matMul` and about 265 ms this way (wasm backend,
 * tfjs 4.22, shared 2-core machine, one noisy measurement each).
 */
export class Linear {
  /** [inputs, outputs]. */
  readonly weight: tf.Variable;
  /** [outputs]. */
  readonly bias: tf.Variable;

  constructor(store: ParameterStore, name: string, inputs: number, outputs: number, std: number) {
    this.weight = store.normal(`${name}.weight`, [inputs, outputs], std);
    this.bias = store.constant(`${name}.bias`, [outputs], 0);
  }

  /** Applies the layer to `x` [tokens, inputs] and returns [tokens, outputs]. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return dense(x, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D) as tf.Tensor2D;
  }
}

/**
 * The Transformer's feed-forward sublayer: Linear(d -> f), GELU, Linear(f -> d). GELU is
 * @moebench/moe's tanh form, the same op the MoE experts and the gMLP blocks run, so that speed
 * differences between architectures do not come from different activation kernels.
 */
export class FeedForward {
  private readonly input: Linear;
  private readonly output: Linear;

  /** `outputStd` is the init scale of the second projection (scaled down for deep residual stacks). */
  constructor(store: ParameterStore, name: string, dModel: number, hidden: number, std: number, outputStd: number) {
    this.input = new Linear(store, `${name}.input`, dModel, hidden, std);
    this.output = new Linear(store, `${name}.output`, hidden, dModel, outputStd);
  }

  /** Applies the sublayer to `x` [tokens, d]. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.output.apply(gelu(this.input.apply(x)) as tf.Tensor2D);
  }
}

/**
 * Causal multi-head self-attention. Queries, keys and values come from one d -> 3d projection;
 * scores are scaled by 1 / sqrt(d / heads) and masked above the diagonal with a large negative
 * number, so a position never attends to a later one. The heads run in `causalAttention`.
 */
export class CausalSelfAttention {
  private readonly qkv: Linear;
  private readonly output: Linear;
  /** [seqLen, seqLen]: 0 on and below the diagonal, -1e9 above it. */
  private readonly mask: tf.Tensor2D;

  constructor(
    store: ParameterStore,
    name: string,
    dModel: number,
    private readonly heads: number,
    seqLen: number,
    std: number,
    outputStd: number,
  ) {
    this.qkv = new Linear(store, `${name}.qkv`, dModel, 3 * dModel, std);
    this.output = new Linear(store, `${name}.output`, dModel, dModel, outputStd);
    this.mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([seqLen, seqLen]), -1, 0)), -1e9)) as tf.Tensor2D;
  }

  /**
   * Applies attention to `x` [batch * time, d], which contains `batch` sequences of length `time` with
   * its rows in `rowOrder` (default batch-major). The output has the same row order.
   */
  apply(x: tf.Tensor2D, batch: number, time: number, rowOrder: RowOrder = 'batch-major'): tf.Tensor2D {
    const mask = time === this.mask.shape[0] ? this.mask : (tf.slice(this.mask, [0, 0], [time, time]) as tf.Tensor2D);
    const heads = causalAttention(x, this.qkv.weight as tf.Tensor2D, this.qkv.bias as tf.Tensor1D, mask, { batch, time, heads: this.heads }, rowOrder);
    return this.output.apply(heads);
  }

  /** Releases the mask constant (the variables belong to the store). */
  dispose(): void {
    this.mask.dispose();
  }
}

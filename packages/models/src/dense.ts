import { tf } from '@moebench/backend';
import { dense, denseSplit, gelu, layerNorm } from '@moebench/moe';
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
  private readonly weight: tf.Variable;
  private readonly bias: tf.Variable;

  constructor(store: ParameterStore, name: string, inputs: number, outputs: number, std: number) {
    this.weight = store.normal(`${name}.weight`, [inputs, outputs], std);
    this.bias = store.constant(`${name}.bias`, [outputs], 0);
  }

  /** Applies the layer to `x` [tokens, inputs] and returns [tokens, outputs]. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return dense(x, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D) as tf.Tensor2D;
  }

  /** The same as `apply` split into `parts` equal column blocks, each [tokens, outputs / parts] (see `denseSplit`). */
  applySplit(x: tf.Tensor2D, parts: number): tf.Tensor2D[] {
    return denseSplit(x, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D, parts);
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
 * number, so a position never attends to a later one.
 */
export class CausalSelfAttention {
  private readonly qkv: Linear;
  private readonly output: Linear;
  private readonly headWidth: number;
  /** [seqLen, seqLen]: 0 on and below the diagonal, -1e9 above it. */
  private readonly mask: tf.Tensor2D;

  constructor(
    store: ParameterStore,
    name: string,
    private readonly dModel: number,
    private readonly heads: number,
    seqLen: number,
    std: number,
    outputStd: number,
  ) {
    this.qkv = new Linear(store, `${name}.qkv`, dModel, 3 * dModel, std);
    this.output = new Linear(store, `${name}.output`, dModel, dModel, outputStd);
    this.headWidth = dModel / heads;
    this.mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([seqLen, seqLen]), -1, 0)), -1e9)) as tf.Tensor2D;
  }

  /** Applies attention to `x` [batch * time, d] holding `batch` sequences of length `time`. */
  apply(x: tf.Tensor2D, batch: number, time: number): tf.Tensor2D {
    const { dModel, heads, headWidth } = this;

    // q, k and v [batch * time, d] as the column blocks of the fused projection, without splitting
    // its output (a slow kernel on wasm); each goes to [batch * heads, time, headWidth] with one
    // rank-4 transpose, and the products then run on rank-3 tensors, which tf.matMul takes as they are.
    const [q, k, v] = this.qkv
      .applySplit(x, 3)
      .map((part) => tf.reshape(tf.transpose(tf.reshape(part, [batch, time, heads, headWidth]), [0, 2, 1, 3]), [batch * heads, time, headWidth]) as tf.Tensor3D);

    const mask = time === this.mask.shape[0] ? this.mask : tf.slice(this.mask, [0, 0], [time, time]);
    // Scaling q rather than the scores touches time x headWidth values per head instead of time x time.
    const scaledQ = tf.mul(q, 1 / Math.sqrt(headWidth));
    const scores = tf.add(tf.matMul(scaledQ, k, false, true), mask); // [batch * heads, time, time]
    const weights = tf.softmax(scores);
    const mixed = tf.matMul(weights, v); // [batch * heads, time, headWidth]

    const merged = tf.reshape(tf.transpose(tf.reshape(mixed, [batch, heads, time, headWidth]), [0, 2, 1, 3]), [batch * time, dModel]) as tf.Tensor2D;
    return this.output.apply(merged);
  }

  /** Releases the mask constant (the variables belong to the store). */
  dispose(): void {
    this.mask.dispose();
  }
}

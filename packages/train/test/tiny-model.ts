// A real, minimal tfjs language model for the training-loop tests: a bigram model
// (embedding, then a linear map to the vocabulary), with hooks to inject a NaN, a loss mask or an
// auxiliary loss.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng, tf } from '@moebench/backend';
import type { Architecture, ForwardOptions, ForwardOutput, LanguageModel, ModelAccounting } from '@moebench/models';
import type { BatchSource, TokenBatch } from '../src/index.js';

export interface TinyModelOptions {
  vocab: number;
  width: number;
  seed: number;
  /** The n-th training forward (1-based) returns NaN logits. */
  nanAtTrainingCall?: number;
  /** Count loss only at positions >= this index. */
  maskBefore?: number;
  /** Auxiliary loss weight: aux = weight x mean(bias^2). */
  auxWeight?: number;
}

let instances = 0;

export class TinyModel implements LanguageModel {
  readonly architecture: Architecture = 'transformer';
  readonly config: Readonly<Record<string, unknown>>;
  readonly trainableVariables: tf.Variable[];
  trainingCalls = 0;

  constructor(readonly options: TinyModelOptions) {
    this.config = { ...options };
    const rng = new Rng(options.seed);
    const id = instances++;
    this.trainableVariables = [
      tf.variable(rng.normalTensor([options.vocab, options.width], 0, 0.5), true, `tiny${id}/embedding`),
      tf.variable(rng.normalTensor([options.width, options.vocab], 0, 0.5), true, `tiny${id}/projection`),
      tf.variable(tf.zeros([options.vocab]), true, `tiny${id}/bias`),
    ];
  }

  forward(tokens: tf.Tensor2D, options: ForwardOptions): ForwardOutput {
    const [batch, seqLen] = tokens.shape;
    const [embedding, projection, bias] = this.trainableVariables;
    if (options.training) this.trainingCalls += 1;
    const hidden = tf.gather(embedding, tf.reshape(tokens, [-1]));
    let logits = tf.add(tf.matMul(hidden, projection), bias);
    if (options.training && this.trainingCalls === this.options.nanAtTrainingCall) {
      logits = tf.mul(logits, NaN);
    }
    const output: ForwardOutput = {
      logits: tf.reshape(logits, [batch, seqLen, this.options.vocab]),
      auxLoss: tf.mul(tf.mean(tf.square(bias)), this.options.auxWeight ?? 0),
      routing: [],
    };
    if (this.options.maskBefore !== undefined) {
      const row = Array.from({ length: seqLen }, (_, t) => (t >= (this.options.maskBefore ?? 0) ? 1 : 0));
      output.lossMask = tf.tensor2d(Array.from({ length: batch }, () => row).flat(), [batch, seqLen], 'float32');
    }
    return output;
  }

  accounting(): ModelAccounting {
    const { vocab, width } = this.options;
    return { totalParameters: 2 * vocab * width + vocab, activeParametersPerToken: 2 * vocab * width + vocab, forwardFlopsPerToken: 2 * width * vocab };
  }

  async save(path: string): Promise<void> {
    await mkdir(path, { recursive: true });
    const values = this.trainableVariables.map((variable) => Array.from(variable.dataSync()));
    await writeFile(join(path, 'weights.json'), JSON.stringify(values));
  }

  async load(path: string): Promise<void> {
    const values = JSON.parse(await readFile(join(path, 'weights.json'), 'utf8')) as number[][];
    this.trainableVariables.forEach((variable, index) => {
      tf.tidy(() => variable.assign(tf.tensor(values[index], variable.shape)));
    });
  }

  weights(): number[][] {
    return this.trainableVariables.map((variable) => Array.from(variable.dataSync()));
  }

  dispose(): void {
    tf.dispose(this.trainableVariables);
  }
}

/** Text with a learnable structure: each token mostly follows from the previous one. */
export function patternTokens(length: number, vocab: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const tokens = new Int32Array(length);
  for (let i = 1; i < length; i++) tokens[i] = rng.next() < 0.9 ? (tokens[i - 1] * 3 + 1) % vocab : rng.int(vocab);
  return tokens;
}

/** Cuts the window starting at each offset into inputs and next-token targets. */
export function windowBatch(tokens: Int32Array, offsets: number[], seqLen: number): TokenBatch {
  const inputs = new Int32Array(offsets.length * seqLen);
  const targets = new Int32Array(offsets.length * seqLen);
  offsets.forEach((offset, row) => {
    inputs.set(tokens.subarray(offset, offset + seqLen), row * seqLen);
    targets.set(tokens.subarray(offset + 1, offset + seqLen + 1), row * seqLen);
  });
  return { inputs, targets, batchSize: offsets.length, seqLen };
}

/** A resumable batch source: batch k draws its offsets from Rng(`seed/k`). */
export class WindowSource implements BatchSource {
  private index = 0;
  constructor(private readonly tokens: Int32Array, private readonly batchSize: number, private readonly seqLen: number, private readonly seed: number) {}
  next(): TokenBatch {
    const rng = new Rng(`${this.seed}/${this.index++}`);
    const offsets = Array.from({ length: this.batchSize }, () => rng.int(this.tokens.length - this.seqLen - 1));
    return windowBatch(this.tokens, offsets, this.seqLen);
  }
  getPosition(): unknown {
    return this.index;
  }
  setPosition(position: unknown): void {
    this.index = position as number;
  }
}

/** One batch of token windows as plain arrays, row-major [batchSize, seqLen]. */
export interface TokenBatch {
  /** Input token ids. */
  inputs: Int32Array;
  /** Next-token targets: targets[b, t] is the token that follows inputs[b, t]. */
  targets: Int32Array;
  /** Rows of the batch. */
  batchSize: number;
  /** Tokens per row. */
  seqLen: number;
  /**
   * UTF-8 bytes the targets decode to, for bits per byte. Default: one byte per token, which holds
   * for the byte-level tokenizer.
   */
  targetBytes?: number;
}

/** A resumable stream of training batches. */
export interface BatchSource {
  /** Returns the next batch. */
  next(): TokenBatch;
  /** Returns the current position as a JSON-serialisable value; `setPosition` with it repeats the following batches. */
  getPosition(): unknown;
  /** Moves to a position `getPosition` returned. */
  setPosition(position: unknown): void;
}

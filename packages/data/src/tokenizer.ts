import gpt2Ranks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { decode as gpt2Decode, encode as gpt2Encode, vocabularySize as gpt2VocabularySize } from 'gpt-tokenizer/encoding/r50k_base';
import { DataError } from './errors.js';

/** Tokenizer names: `byte` (UTF-8 bytes, vocabulary 256) and `gpt2` (GPT-2's byte-level BPE). */
export const TOKENIZER_NAMES = ['byte', 'gpt2'] as const;

/** A tokenizer name. */
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

/** Turns text into token ids and back. */
export interface Tokenizer {
  /** Tokenizer name. */
  readonly name: TokenizerName;
  /** Number of distinct token ids; every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** Encodes `text` into token ids. */
  encode(text: string): Int32Array;
  /** Decodes token ids back into text. */
  decode(tokens: ArrayLike<number>): string;
  /** Returns the number of UTF-8 bytes `tokens` decode to, counting each token's own bytes. */
  byteLength(tokens: ArrayLike<number>): number;
}

/**
 * Byte-level tokenizer: each UTF-8 byte is one token, so the vocabulary is 256 and bits per byte
 * equal bits per token. Decoding replaces an incomplete UTF-8 sequence with U+FFFD.
 */
export class ByteTokenizer implements Tokenizer {
  readonly name = 'byte';
  readonly vocabSize = 256;

  encode(text: string): Int32Array {
    return Int32Array.from(Buffer.from(text, 'utf8'));
  }

  decode(tokens: ArrayLike<number>): string {
    return Buffer.from(Uint8Array.from(tokens)).toString('utf8');
  }

  byteLength(tokens: ArrayLike<number>): number {
    return tokens.length;
  }
}

/**
 * GPT-2's byte-level BPE (the `r50k_base` encoding of gpt-tokenizer 4.0.0, vocabulary 50,257).
 * Special tokens such as `<|endoftext|>` in the text are encoded as ordinary text.
 */
export class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2';
  readonly vocabSize = gpt2VocabularySize;

  encode(text: string): Int32Array {
    return Int32Array.from(gpt2Encode(text, { disallowedSpecial: new Set() }));
  }

  decode(tokens: ArrayLike<number>): string {
    return gpt2Decode(Array.from(tokens));
  }

  byteLength(tokens: ArrayLike<number>): number {
    const lengths = gpt2TokenByteLengths();
    let total = 0;
    for (let i = 0; i < tokens.length; i++) total += lengths[tokens[i]];
    return total;
  }
}

let tokenByteLengths: Uint16Array | undefined;

/**
 * Returns the byte length of every GPT-2 token, [vocabSize]. gpt-tokenizer's rank table lists each
 * mergeable token as text (when it is valid UTF-8) or as raw bytes. The one special token,
 * `<|endoftext|>` (id 50256), counts as its 13 characters.
 */
function gpt2TokenByteLengths(): Uint16Array {
  if (!tokenByteLengths) {
    tokenByteLengths = new Uint16Array(gpt2VocabularySize);
    gpt2Ranks.forEach((token, id) => {
      tokenByteLengths![id] = typeof token === 'string' ? Buffer.byteLength(token) : token.length;
    });
    tokenByteLengths[gpt2Ranks.length] = Buffer.byteLength('<|endoftext|>');
  }
  return tokenByteLengths;
}

/** Creates the tokenizer called `name`. Default: `byte`. */
export function createTokenizer(name: TokenizerName = 'byte'): Tokenizer {
  if (name === 'byte') return new ByteTokenizer();
  if (name === 'gpt2') return new Gpt2Tokenizer();
  throw new DataError('tokenizer', name, 'is not a known tokenizer', `one of ${TOKENIZER_NAMES.join(', ')}`);
}

import { describe, expect, it } from 'vitest';
import { runReadmeExamples } from '../../../testing/readme-example.js';
import { ByteTokenizer, Gpt2Tokenizer, bitsPerByte, createTokenizer, evaluationBatches, prepareDataset } from '../src/index.js';

describe('ByteTokenizer', () => {
  it('encodes UTF-8 bytes and decodes them back', () => {
    const tokenizer = new ByteTokenizer();
    expect(Array.from(tokenizer.encode('Aé€'))).toEqual([0x41, 0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    expect(tokenizer.decode(tokenizer.encode('State of the Union, 2021 — Biden'))).toBe('State of the Union, 2021 — Biden');
    expect(tokenizer.vocabSize).toBe(256);
  });
});

describe('Gpt2Tokenizer', () => {
  it('matches GPT-2 ids for a known string', () => {
    const tokenizer = new Gpt2Tokenizer();
    expect(Array.from(tokenizer.encode('Hello world'))).toEqual([15496, 995]);
    expect(tokenizer.vocabSize).toBe(50257);
  });

  it('round-trips text and treats special tokens as plain text', () => {
    const tokenizer = createTokenizer('gpt2');
    const text = 'Fellow-Citizens <|endoftext|> of the Senate';
    const ids = tokenizer.encode(text);
    expect(ids).not.toContain(50256);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('rejects an unknown tokenizer name', () => {
    expect(() => createTokenizer('sentencepiece' as 'byte')).toThrow('tokenizer: is not a known tokenizer (received "sentencepiece"). Allowed: one of byte, gpt2.');
  });
});

describe('byteLength', () => {
  it('counts the UTF-8 bytes tokens decode to', () => {
    const text = 'Hello world — café, naïve 日本語\n\n  spaces <|endoftext|>';
    for (const tokenizer of [createTokenizer('byte'), createTokenizer('gpt2')]) {
      expect(tokenizer.byteLength(tokenizer.encode(text))).toBe(Buffer.byteLength(text));
    }
  });

  it('gives a lone GPT-2 token of a multi-byte character its raw bytes', () => {
    const tokenizer = new Gpt2Tokenizer();
    // "日本語" is split into tokens that are parts of UTF-8 sequences.
    const ids = tokenizer.encode('日本語');
    expect(ids.length).toBeGreaterThan(1);
    expect(Array.from(ids, (id) => tokenizer.byteLength([id])).reduce((a, b) => a + b, 0)).toBe(9);
    expect(tokenizer.byteLength([50256])).toBe(13);
  });
});

describe('bits per byte', () => {
  it('converts nats per token to bits per byte', () => {
    expect(bitsPerByte(Math.LN2, 1)).toBeCloseTo(1, 12);
    expect(bitsPerByte(4 * Math.LN2, 4)).toBeCloseTo(1, 12);
  });

  it('records bytes per token of each split for both tokenizers', () => {
    const bytes = prepareDataset({ corpus: 'brown' });
    const bpe = prepareDataset({ corpus: 'brown', tokenizer: 'gpt2' });
    expect(bytes.validation.bytesPerToken).toBe(1);
    expect(bpe.validation.bytes).toBe(bytes.validation.bytes);
    expect(bpe.validation.bytesPerToken).toBeCloseTo(bpe.validation.bytes / bpe.validation.tokenCount, 12);
    // English prose takes about four to five bytes per GPT-2 token.
    expect(bpe.validation.bytesPerToken).toBeGreaterThan(3.5);
    expect(bpe.validation.bytesPerToken).toBeLessThan(6);
    expect(bpe.manifest.splits.train.sha256).toBe(bytes.manifest.splits.train.sha256);
    expect(bpe.manifest.vocabSize).toBe(50257);
  });

  it('gives evaluation batches their exact target bytes', () => {
    const bpe = prepareDataset({ corpus: 'brown', tokenizer: 'gpt2' });
    const batches = evaluationBatches(bpe.validation.tokens, { batchSize: 4, seqLen: 32, maxBatches: 3, tokenizer: bpe.tokenizer });
    for (const batch of batches) {
      expect(batch.targetBytes).toBe(Buffer.byteLength(bpe.tokenizer.decode(batch.targets)));
    }
    expect(evaluationBatches(bpe.validation.tokens, { batchSize: 4, seqLen: 32, maxBatches: 1 })[0].targetBytes).toBeUndefined();
  });
});

describe('README', () => {
  it('runs the usage example', async () => {
    const { checked, mismatches } = await runReadmeExamples(new URL('../README.md', import.meta.url).pathname);
    expect(mismatches).toEqual([]);
    expect(checked).toBe(6);
  });
});

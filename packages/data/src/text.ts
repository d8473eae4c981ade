import { createHash } from 'node:crypto';
import { DataError } from './errors.js';

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes `bytes` as UTF-8 text, rejecting content that is not text: a NUL byte (binary files
 * have them, text files never do) or a byte sequence that is not valid UTF-8. A leading byte
 * order mark is dropped.
 */
export function decodeTextFile(bytes: Uint8Array, field: string, path: string): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new DataError(field, path, `is a binary file (NUL byte at offset ${nul})`, 'UTF-8 text files');
  }
  try {
    const text = strictDecoder.decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    const offset = firstInvalidUtf8Offset(bytes);
    throw new DataError(field, path, `is not valid UTF-8 (first invalid byte at offset ${offset})`, 'UTF-8 text files');
  }
}

/** Offset of the first byte that starts an invalid UTF-8 sequence, or -1 when all are valid. */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    let length: number;
    let min: number;
    if (lead < 0x80) {
      i++;
      continue;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      min = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      min = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + length > bytes.length) return i;
    let codePoint = lead & (0xff >> (length + 1));
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if ((next & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return i;
    i += length;
  }
  return -1;
}

/** Hex SHA-256 of the UTF-8 encoding of `text`. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Number of bytes of the UTF-8 encoding of `text`. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

import { readFile, writeFile } from 'node:fs/promises';
import { tf } from '@moebench/backend';
import type { NamedVariable } from './parameters.js';

/** Fixed tables saved beside the weights as JSON values, by name (for example a HASH layer's token -> expert table). */
export type CheckpointTables = Record<string, unknown>;

/** The 8 bytes every moebench checkpoint starts with. */
export const CHECKPOINT_MAGIC = 'MOEBNCH1';

interface CheckpointHeader {
  architecture: string;
  config: unknown;
  variables: Array<{ name: string; shape: number[]; offset: number; size: number }>;
  tables: CheckpointTables;
}

interface CheckpointContent {
  architecture: string;
  config: object;
  variables: readonly NamedVariable[];
}

/**
 * Writes a checkpoint. The file starts with the magic `MOEBNCH1` and the header length as a
 * little-endian uint32. A JSON header follows (architecture, config, each variable's name, shape and
 * offset, the tables), padded with spaces to a multiple of 4 bytes. Then come every variable's values
 * as little-endian float32, in order.
 */
export async function writeCheckpoint(path: string, content: CheckpointContent & { tables: CheckpointTables }): Promise<void> {
  let offset = 0;
  const variables = content.variables.map(({ name, variable }) => {
    const entry = { name, shape: variable.shape.slice(), offset, size: variable.size };
    offset += variable.size;
    return entry;
  });
  const header: CheckpointHeader = { architecture: content.architecture, config: toJsonValue(content.config), variables, tables: content.tables };

  let headerText = JSON.stringify(header);
  const prefixBytes = CHECKPOINT_MAGIC.length + 4;
  while ((prefixBytes + Buffer.byteLength(headerText)) % 4 !== 0) headerText += ' ';
  const headerBytes = Buffer.from(headerText, 'utf8');

  const file = Buffer.alloc(prefixBytes + headerBytes.length + 4 * offset);
  file.write(CHECKPOINT_MAGIC, 0, 'latin1');
  file.writeUInt32LE(headerBytes.length, CHECKPOINT_MAGIC.length);
  headerBytes.copy(file, prefixBytes);

  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let position = prefixBytes + headerBytes.length;
  for (const { variable } of content.variables) {
    const values = await variable.data();
    for (let i = 0; i < values.length; i++, position += 4) view.setFloat32(position, values[i], true);
  }
  await writeFile(path, file);
}

/**
 * Reads a checkpoint written by `writeCheckpoint` into `content.variables` and returns its tables.
 *
 * @throws Error naming the file and the mismatch when the file is not a moebench checkpoint, is
 *   truncated, or was written by a different architecture, config, or variable layout. Nothing is
 *   assigned unless every check passes.
 */
export async function readCheckpoint(path: string, content: CheckpointContent): Promise<CheckpointTables> {
  const file = await readFile(path);
  const prefixBytes = CHECKPOINT_MAGIC.length + 4;
  if (file.length < prefixBytes || file.toString('latin1', 0, CHECKPOINT_MAGIC.length) !== CHECKPOINT_MAGIC) {
    throw new Error(`${path} is not a moebench checkpoint: it does not start with "${CHECKPOINT_MAGIC}".`);
  }
  const headerLength = file.readUInt32LE(CHECKPOINT_MAGIC.length);
  if (prefixBytes + headerLength > file.length) {
    throw new Error(`${path} is truncated: its header claims ${headerLength} bytes, the file has ${file.length - prefixBytes} after the prefix.`);
  }
  const header = JSON.parse(file.toString('utf8', prefixBytes, prefixBytes + headerLength)) as CheckpointHeader;

  if (header.architecture !== content.architecture) {
    throw new Error(`${path} contains a "${header.architecture}" model, but this model is "${content.architecture}".`);
  }
  const expectedConfig = canonicalJson(toJsonValue(content.config));
  if (canonicalJson(header.config) !== expectedConfig) {
    throw new Error(`${path} was saved with a different config: file ${canonicalJson(header.config)}, model ${expectedConfig}.`);
  }
  if (header.variables.length !== content.variables.length) {
    throw new Error(`${path} contains ${header.variables.length} variables, the model has ${content.variables.length}.`);
  }
  header.variables.forEach((entry, i) => {
    const { name, variable } = content.variables[i];
    if (entry.name !== name || entry.shape.join(',') !== variable.shape.join(',')) {
      throw new Error(`${path}: variable ${i} is "${entry.name}" [${entry.shape.join(', ')}], the model expects "${name}" [${variable.shape.join(', ')}].`);
    }
  });
  const dataStart = prefixBytes + headerLength;
  const totalValues = header.variables.reduce((sum, entry) => sum + entry.size, 0);
  if (file.length !== dataStart + 4 * totalValues) {
    throw new Error(`${path} is truncated or padded: expected ${dataStart + 4 * totalValues} bytes, found ${file.length}.`);
  }

  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  header.variables.forEach((entry, i) => {
    const values = new Float32Array(entry.size);
    const start = dataStart + 4 * entry.offset;
    for (let j = 0; j < entry.size; j++) values[j] = view.getFloat32(start + 4 * j, true);
    const variable = content.variables[i].variable;
    const loaded = tf.tensor(values, variable.shape, 'float32');
    variable.assign(loaded);
    loaded.dispose();
  });
  return header.tables ?? {};
}

/** Serialises a JSON value with object keys sorted, so configs compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/** Converts typed arrays (unigram counts) to plain arrays so a config survives a JSON round trip. */
function toJsonValue(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, item: unknown) => (ArrayBuffer.isView(item) ? Array.from(item as unknown as ArrayLike<number>) : item)),
  );
}

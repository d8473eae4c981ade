export {
  HASH_KINDS,
  buildBalancedTable,
  buildBigramTable,
  buildRandomTable,
  deserializeHashTable,
  lookupExperts,
  serializeHashTable,
  type HashKind,
  type HashTable,
  type SerializedHashTable,
} from './table.js';
export { resolveHashOptions, type HashOptions, type ResolvedHashOptions } from './options.js';
export { hashRoute } from './route.js';
export { buildHashTable, createHashLayer, HashLayer, HashRouter } from './layer.js';

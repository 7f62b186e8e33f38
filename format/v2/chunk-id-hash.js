// The chunk id's hash (docs/FORMAT.md, "Chunk ids"), apart from chunk-id.ts so that the chunk threads
// (chunk-worker.js), plain JavaScript, load it without a TypeScript loader.
import { createHmac } from 'node:crypto';

/** HMAC-SHA-256 of the chunk's plaintext, keyed with the dedup key. */
export function chunkIdOf(dedupKey, plaintext) {
  return createHmac('sha256', dedupKey).update(plaintext).digest();
}

import { keyedBlake2b } from './keyed-blake2b.js';

// Chunk ids are keyed hashes: with a plain hash, anyone reading the bucket or strackt's index could
// confirm that a team holds a known file by hashing it. docs/SECURITY.md says what the key protects.

const dedupKeyContext = Buffer.from('strackt-dedup-key-v1', 'ascii');
export const chunkIdBytes = 32;

/**
 * The team's dedup key: BLAKE2b-256 of "strackt-dedup-key-v1" keyed with the team secret key. The
 * control plane derives it and hands it to the team's servers; a customer re-derives it from the
 * team key alone. It is one-way: the dedup key gives nothing of the secret key.
 */
export function dedupKeyOf(teamSecretKey: Buffer): Buffer {
  return keyedBlake2b(teamSecretKey)(dedupKeyContext, Buffer.alloc(32));
}

/** BLAKE2b-256 of the chunk's plaintext, keyed with the dedup key. */
export function chunkIdOf(dedupKey: Buffer, plaintext: Uint8Array): Buffer {
  return chunkIdHasher(dedupKey)(plaintext);
}

/** chunkIdOf for many chunks of one key: the hasher (a WebAssembly instance) made once. */
export function chunkIdHasher(dedupKey: Buffer): (plaintext: Uint8Array) => Buffer {
  const hash = keyedBlake2b(dedupKey);
  return (plaintext) => hash(plaintext, Buffer.alloc(chunkIdBytes));
}

import sodium from 'sodium-native';

export { chunkIdOf } from './chunk-id-hash.js';

// Chunk ids are keyed hashes: with a plain hash, anyone reading the bucket or strackt's index could
// confirm that a team holds a known file by hashing it. docs/SECURITY.md says what the key protects.
// HMAC-SHA-256, where format 2 began with keyed BLAKE2b-256: every byte a capture reads is hashed and
// every byte a restore writes, and OpenSSL's SHA-256 (SHA-NI) took 0.54 s per GiB on the benchmark
// machine against 0.93 for libsodium's BLAKE2b and 1.03 for a WebAssembly one (measured side by side).

const dedupKeyContext = Buffer.from('strackt-dedup-key-v1', 'ascii');
export const chunkIdBytes = 32;
/** The manifest's name for the scheme (chunking.id): a reader refuses ids made any other way. */
export const chunkIdScheme = 'hmac-sha256';

/**
 * The team's dedup key: BLAKE2b-256 of "strackt-dedup-key-v1" keyed with the team secret key. The
 * control plane derives it and hands it to the team's servers; a customer re-derives it from the
 * team key alone. It is one-way: the dedup key gives nothing of the secret key.
 */
export function dedupKeyOf(teamSecretKey: Buffer): Buffer {
  const key = Buffer.alloc(32);
  sodium.crypto_generichash(key, dedupKeyContext, teamSecretKey);
  return key;
}

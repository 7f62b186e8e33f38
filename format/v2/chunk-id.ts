import sodium from 'sodium-native';

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
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, dedupKeyContext, teamSecretKey);
  return out;
}

/** BLAKE2b-256 of the chunk's plaintext, keyed with the dedup key. */
export function chunkIdOf(dedupKey: Buffer, plaintext: Uint8Array): Buffer {
  const out = Buffer.alloc(chunkIdBytes);
  sodium.crypto_generichash(out, plaintext as Buffer, dedupKey);
  return out;
}

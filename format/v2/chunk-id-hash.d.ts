/** HMAC-SHA-256 of the chunk's plaintext, keyed with the dedup key. */
export function chunkIdOf(dedupKey: Uint8Array, plaintext: Uint8Array): Buffer;

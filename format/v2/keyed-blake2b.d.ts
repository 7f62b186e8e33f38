/**
 * A hasher of keyed BLAKE2b-256 with `key` (16 to 64 bytes, as libsodium takes), as libsodium's crypto_generichash with a
 * 32-byte out: answers the 32 bytes of `data`'s hash, written into `out` if given.
 */
export function keyedBlake2b(
  key: Uint8Array,
): <T extends Uint8Array = Uint8Array>(data: Uint8Array, out?: T) => T;

/**
 * Keyed BLAKE2b-256 with `key` (16 to 64 bytes, as libsodium takes), as libsodium's crypto_generichash
 * with a 32-byte out, over data given in pieces: digest answers the hash of all updated since the last
 * digest (written into `out` if given).
 */
export function keyedBlake2bStream(key: Uint8Array): {
  update(data: Uint8Array): void;
  digest<T extends Uint8Array = Uint8Array>(out?: T): T;
};

/** keyedBlake2bStream for data whole: answers the 32 bytes of `data`'s hash. */
export function keyedBlake2b(
  key: Uint8Array,
): <T extends Uint8Array = Uint8Array>(data: Uint8Array, out?: T) => T;

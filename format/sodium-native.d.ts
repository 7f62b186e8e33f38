// The subset of sodium-native 4 this project calls (the published @types lag behind its API).
declare module 'sodium-native' {
  const sodium: {
    crypto_box_PUBLICKEYBYTES: number;
    crypto_box_SECRETKEYBYTES: number;
    crypto_box_SEALBYTES: number;
    crypto_secretstream_xchacha20poly1305_KEYBYTES: number;
    crypto_secretstream_xchacha20poly1305_STATEBYTES: number;
    crypto_secretstream_xchacha20poly1305_HEADERBYTES: number;
    crypto_secretstream_xchacha20poly1305_ABYTES: number;
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE: number;
    crypto_secretstream_xchacha20poly1305_TAG_FINAL: number;
    crypto_box_keypair(publicKey: Buffer, secretKey: Buffer): void;
    crypto_scalarmult_base(publicKey: Buffer, secretKey: Buffer): void;
    crypto_box_seal(out: Buffer, message: Buffer, publicKey: Buffer): void;
    crypto_box_seal_open(out: Buffer, sealed: Buffer, publicKey: Buffer, secretKey: Buffer): boolean;
    crypto_generichash(out: Buffer, input: Buffer, key?: Buffer): void;
    crypto_secretstream_xchacha20poly1305_keygen(key: Buffer): void;
    crypto_secretstream_xchacha20poly1305_init_push(state: Buffer, header: Buffer, key: Buffer): void;
    crypto_secretstream_xchacha20poly1305_push(
      state: Buffer,
      out: Buffer,
      message: Buffer,
      ad: Buffer | null,
      tag: number,
    ): number;
    crypto_secretstream_xchacha20poly1305_init_pull(state: Buffer, header: Buffer, key: Buffer): void;
    /** Throws when the chunk does not authenticate. */
    crypto_secretstream_xchacha20poly1305_pull(
      state: Buffer,
      out: Buffer,
      tag: Buffer,
      ciphertext: Buffer,
      ad: Buffer | null,
    ): number;
    randombytes_buf(out: Buffer): void;
  };
  export default sodium;
}

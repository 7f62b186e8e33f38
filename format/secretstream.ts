// libsodium's crypto_secretstream_xchacha20poly1305 sizes and tags, which docs/FORMAT.md fixes for
// every snapshot. Literals rather than read from the library as a module loads: loading the format
// must not load libsodium, which an agent holds only once it seals or opens something.
// tests/unit/libsodium-reference.test.ts checks them against the library.
export const HEADERBYTES = 24;
export const ABYTES = 17;
export const STATEBYTES = 52;
export const TAG_MESSAGE = 0;
export const TAG_FINAL = 3;

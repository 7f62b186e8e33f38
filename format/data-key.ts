import sodium from 'sodium-native';

// A snapshot's data key, sealed in its container header to the team public key (docs/FORMAT.md, "Keys").

/** What opens a container: the team secret key, or the data key itself (re-sealed to an agent). */
export type KeySource = { secretKey: Buffer } | { dataKey: Buffer };

export function newDataKey(): Buffer {
  const key = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES);
  sodium.crypto_secretstream_xchacha20poly1305_keygen(key);
  return key;
}

export function sealDataKey(dataKey: Buffer, publicKey: Buffer): Buffer {
  const sealed = Buffer.alloc(dataKey.length + sodium.crypto_box_SEALBYTES);
  sodium.crypto_box_seal(sealed, dataKey, publicKey);
  return sealed;
}

/** The data key inside a sealed box, or undefined when this key pair cannot open it. */
export function openDataKey(sealed: Buffer, publicKey: Buffer, secretKey: Buffer): Buffer | undefined {
  const dataKey = Buffer.alloc(sealed.length - sodium.crypto_box_SEALBYTES);
  return sodium.crypto_box_seal_open(dataKey, sealed, publicKey, secretKey) ? dataKey : undefined;
}

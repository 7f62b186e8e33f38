// The team key's fingerprint, worked out in the browser from the printed secret key (STK1-…), as
// format/team-key.ts does on the server: the secret key never leaves the page. libsodium is loaded
// only when a key is checked (a chunk of its own, from this origin).

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const keyIdContext = new TextEncoder().encode('strackt-team-key-id-v1');

export class KeyTextError extends Error {}

function unbase32(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new KeyTextError(`not a strackt team key: unexpected character "${ch}"`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** The 32 secret bytes of a printed key, its checksum checked (so a typo says so, not "wrong key"). */
async function parse(text: string): Promise<Uint8Array> {
  const trimmed = text.trim().toUpperCase();
  if (!trimmed.startsWith('STK1')) throw new KeyTextError('not a strackt team key: it must start with STK1-');
  const bytes = unbase32(trimmed.slice(4).replace(/[\s-]/g, ''));
  try {
    if (bytes.length !== 36)
      throw new KeyTextError('not a strackt team key: wrong length (a character missing or extra?)');
    const secret = bytes.slice(0, 32);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', secret));
    if (digest.slice(0, 4).some((b, i) => b !== bytes[32 + i])) {
      secret.fill(0);
      throw new KeyTextError('the key has a typo: its checksum does not match');
    }
    return secret;
  } finally {
    bytes.fill(0);
  }
}

/** The fingerprint GET /team shows, derived from the secret key: X25519 public key, then its key id. */
export async function fingerprintOfSecret(text: string): Promise<string> {
  const secret = await parse(text);
  const { default: sodium } = await import('libsodium-wrappers');
  await sodium.ready;
  try {
    const publicKey = sodium.crypto_scalarmult_base(secret);
    const message = new Uint8Array(keyIdContext.length + publicKey.length);
    message.set(keyIdContext);
    message.set(publicKey, keyIdContext.length);
    const keyId = sodium.crypto_generichash(16, message, null);
    return sodium.to_hex(keyId).match(/.{4}/g)!.join('-');
  } finally {
    sodium.memzero(secret);
  }
}

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import sodium from 'sodium-native';

export interface TeamKeyPair {
  publicKey: Buffer;
  secretKey: Buffer;
}

const keyIdContext = Buffer.from('strackt-team-key-id-v1', 'ascii');
const printablePrefix = 'STK1-';
const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class TeamKeyError extends Error {
  override name = 'TeamKeyError';
}

// The key pairs are libsodium's crypto_box ones (X25519: 32 random bytes, the public key their
// scalar multiple of the base point), made with Node's crypto: the same bytes (the reference test
// checks them against libsodium), and an agent makes its own key at start without loading libsodium,
// which it needs only once it seals or opens a snapshot.
const x25519Pkcs8Prefix = Buffer.from('302e020100300506032b656e04220420', 'hex');

export function generateTeamKey(): TeamKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    secretKey: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'),
  };
}

export function publicKeyOf(secretKey: Buffer): Buffer {
  if (secretKey.length !== 32) throw new TeamKeyError('an X25519 secret key is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([x25519Pkcs8Prefix, secretKey]),
    format: 'der',
    type: 'pkcs8',
  });
  return Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
}

/** 16 bytes naming a team key in every snapshot header, so a restore can say "wrong key" up front. */
export function keyIdOf(publicKey: Buffer): Buffer {
  const out = Buffer.alloc(16);
  sodium.crypto_generichash(out, Buffer.concat([keyIdContext, publicKey]));
  return out;
}

/** What people compare: the key id in hex, grouped by four. */
export function fingerprintOf(publicKey: Buffer): string {
  return keyIdOf(publicKey).toString('hex').match(/.{4}/g)!.join('-');
}

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32Alphabet[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Buffer {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of text) {
    const v = base32Alphabet.indexOf(ch);
    if (v < 0) throw new TeamKeyError(`not a strackt team key: unexpected character "${ch}"`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The form shown once to the customer: STK1- then base32 of the key and a 4-byte checksum, grouped by four. */
export function printableSecretKey(secretKey: Buffer): string {
  const check = createHash('sha256').update(secretKey).digest().subarray(0, 4);
  return (
    printablePrefix +
    base32(Buffer.concat([secretKey, check]))
      .match(/.{1,4}/g)!
      .join('-')
  );
}

export function parsePrintableSecretKey(text: string): Buffer {
  const trimmed = text.trim().toUpperCase();
  if (!trimmed.startsWith('STK1')) throw new TeamKeyError('not a strackt team key: it must start with STK1-');
  const bytes = unbase32(trimmed.slice(4).replace(/[\s-]/g, ''));
  if (bytes.length !== 36)
    throw new TeamKeyError('not a strackt team key: wrong length (a character missing or extra?)');
  const secretKey = bytes.subarray(0, 32);
  const check = createHash('sha256').update(secretKey).digest().subarray(0, 4);
  if (!check.equals(bytes.subarray(32)))
    throw new TeamKeyError('the team key has a typo: its checksum does not match');
  return Buffer.from(secretKey);
}

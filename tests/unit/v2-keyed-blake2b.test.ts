import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import sodium from 'sodium-native';
import { keyedBlake2b } from '../../format/v2/keyed-blake2b.js';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/** libsodium's keyed BLAKE2b-256: the reference the format names. */
function reference(key: Buffer, data: Buffer): Buffer {
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, data, key);
  return out;
}

describe('keyedBlake2b', () => {
  it('hashes as libsodium does, at every length around a block and a piece, one hasher for all', () => {
    const key = noise(32, 1);
    const hash = keyedBlake2b(key);
    const piece = 32 * 1024;
    const lengths = [
      ...Array.from({ length: 300 }, (_, n) => n),
      piece - 129, piece - 1, piece, piece + 1, piece + 127, piece + 128, piece + 129,
      2 * piece, 2 * piece + 1, 1024 * 1024, 1024 * 1024 + 17, 8 * 1024 * 1024 + 5,
    ]; // prettier-ignore
    for (const n of lengths) {
      const data = noise(n, n % 251);
      assert.deepEqual(Buffer.from(hash(data)), reference(key, data), `${n} bytes`);
    }
  });

  it('takes keys of 16 to 64 bytes, as libsodium does, and refuses others', () => {
    const data = noise(1000, 3);
    for (const n of [16, 31, 32, 33, 63, 64]) {
      const key = noise(n, 9);
      assert.deepEqual(Buffer.from(keyedBlake2b(key)(data)), reference(key, data), `a key of ${n} bytes`);
    }
    assert.throws(() => keyedBlake2b(Buffer.alloc(15)), RangeError);
    assert.throws(() => keyedBlake2b(Buffer.alloc(65)), RangeError);
  });

  it('writes into the buffer it is given, and hashes views into larger buffers', () => {
    const key = noise(32, 5);
    const whole = noise(5000, 6);
    const view = whole.subarray(123, 4567);
    const out = Buffer.alloc(32);
    assert.equal(keyedBlake2b(key)(view, out), out);
    assert.deepEqual(out, reference(key, Buffer.from(view)));
  });
});

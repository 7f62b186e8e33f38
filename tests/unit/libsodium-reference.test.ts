import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { before, describe, it } from 'node:test';
import _sodium from 'libsodium-wrappers';
import nativeSodium from 'sodium-native';
import { headerBytes, newHeader } from '../../format/container-layout.ts';
import { DecryptStream } from '../../format/container-opener.ts';
import { EncryptStream } from '../../format/container-sealer.ts';
import { newDataKey } from '../../format/data-key.ts';
import * as secretstream from '../../format/secretstream.ts';
import { generateTeamKey, publicKeyOf } from '../../format/team-key.ts';

// Snapshots are sealed with sodium-native (libsodium's C library) for speed; the design names
// libsodium-wrappers (libsodium compiled to WebAssembly) as the reference. Both directions are checked
// here with the container's bytes as docs/FORMAT.md lays them out, so the two can never drift apart.

let sodium: typeof _sodium;
before(async () => {
  await _sodium.ready;
  sodium = _sodium;
});

const team = generateTeamKey();
const chunkSize = 1000;

/** Opens a container with libsodium-wrappers only, following FORMAT.md's reading steps. */
function openWithWrappers(container: Buffer): Buffer {
  const header = container.subarray(0, headerBytes);
  const dataKey = sodium.crypto_box_seal_open(header.subarray(32, 112), team.publicKey, team.secretKey);
  const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header.subarray(112, 136), dataKey);
  const plain: Uint8Array[] = [];
  let offset = headerBytes;
  let final = false;
  for (let i = 0; offset < container.length; i++) {
    assert.equal(final, false, 'nothing may follow the final chunk');
    const n = container.readUInt32BE(offset);
    const pulled = sodium.crypto_secretstream_xchacha20poly1305_pull(
      state,
      container.subarray(offset + 4, offset + 4 + n),
      i === 0 ? header : null,
    );
    assert.ok(pulled, `chunk ${i} opens`);
    plain.push(pulled.message);
    final = pulled.tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    offset += 4 + n;
  }
  assert.equal(final, true, 'the last chunk is tagged final');
  return Buffer.concat(plain);
}

/** Seals a container with libsodium-wrappers for the stream; the header's fixed fields as FORMAT.md says. */
function sealWithWrappers(plain: Buffer): Buffer {
  const dataKey = newDataKey();
  const header = newHeader(team.publicKey, dataKey, 'none', chunkSize);
  const init = sodium.crypto_secretstream_xchacha20poly1305_init_push(dataKey);
  Buffer.from(init.header).copy(header, 112);
  const out: Buffer[] = [header];
  for (let i = 0; i === 0 || i * chunkSize < plain.length; i++) {
    const last = (i + 1) * chunkSize >= plain.length;
    const cipher = sodium.crypto_secretstream_xchacha20poly1305_push(
      init.state,
      plain.subarray(i * chunkSize, (i + 1) * chunkSize),
      i === 0 ? header : null,
      last
        ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    );
    const length = Buffer.alloc(4);
    length.writeUInt32BE(cipher.length);
    out.push(length, Buffer.from(cipher));
  }
  return Buffer.concat(out);
}

describe('the container against the reference libsodium (libsodium-wrappers)', () => {
  for (const size of [0, 1, chunkSize, 3 * chunkSize + 17]) {
    it(`reads what strackt sealed, ${size} bytes`, async () => {
      const plain = randomBytes(size);
      const sealed = await buffer(
        Readable.from([plain]).pipe(
          new EncryptStream({
            publicKey: team.publicKey,
            dataKey: newDataKey(),
            compression: 'none',
            chunkSize,
          }),
        ),
      );
      assert.deepEqual(openWithWrappers(sealed), plain);
    });

    it(`is read by strackt when the reference sealed it, ${size} bytes`, async () => {
      const plain = randomBytes(size);
      const opened = await buffer(
        Readable.from([sealWithWrappers(plain)]).pipe(new DecryptStream({ secretKey: team.secretKey })),
      );
      assert.deepEqual(opened, plain);
    });
  }

  it('fails in the reference too when one byte of a chunk is flipped', async () => {
    const sealed = await buffer(
      Readable.from([randomBytes(2 * chunkSize)]).pipe(
        new EncryptStream({
          publicKey: team.publicKey,
          dataKey: newDataKey(),
          compression: 'none',
          chunkSize,
        }),
      ),
    );
    const second = headerBytes + 4 + chunkSize + 17 + 4; // the second chunk's ciphertext
    sealed.writeUInt8(sealed.readUInt8(second + 10) ^ 1, second + 10);
    assert.throws(() => openWithWrappers(sealed));
  });
});

describe('team and agent key pairs against the reference libsodium', () => {
  it('are crypto_box key pairs: the public key is crypto_scalarmult_base of the secret one', () => {
    for (let i = 0; i < 50; i++) {
      const pair = generateTeamKey();
      assert.deepEqual(Buffer.from(sodium.crypto_scalarmult_base(pair.secretKey)), pair.publicKey);
    }
  });

  it('derive the public key of any 32 bytes as libsodium does, and of libsodium’s own pairs', () => {
    for (let i = 0; i < 50; i++) {
      const secretKey = randomBytes(32);
      assert.deepEqual(publicKeyOf(secretKey), Buffer.from(sodium.crypto_scalarmult_base(secretKey)));
      const theirs = sodium.crypto_box_keypair();
      assert.deepEqual(publicKeyOf(Buffer.from(theirs.privateKey)), Buffer.from(theirs.publicKey));
    }
  });

  it('seal to one another: libsodium opens what is sealed to a pair made here', () => {
    const pair = generateTeamKey();
    const sealed = sodium.crypto_box_seal(Buffer.from('data key'), pair.publicKey);
    const opened = sodium.crypto_box_seal_open(sealed, pair.publicKey, pair.secretKey);
    assert.equal(Buffer.from(opened).toString(), 'data key');
  });
});

it('has the secretstream sizes and tags the format writes as literals', () => {
  const theirs = {
    HEADERBYTES: sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    ABYTES: sodium.crypto_secretstream_xchacha20poly1305_ABYTES,
    STATEBYTES: nativeSodium.crypto_secretstream_xchacha20poly1305_STATEBYTES,
    TAG_MESSAGE: sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
    TAG_FINAL: sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
  };
  assert.deepEqual({ ...secretstream }, theirs);
});

import sodium from 'sodium-native';
import { openDataKey, type KeySource } from '../data-key.ts';
import { TAG_FINAL } from '../secretstream.ts';
import { keyIdOf, publicKeyOf } from '../team-key.ts';
import { BlobOpener } from './blob.ts';
import { FormatV2Error } from './errors.ts';
import {
  decodeIndex,
  indexOverhead,
  parsePreamble,
  preambleBytes,
  tailBytesOf,
  trailerBytes,
  type PackEntry,
} from './pack-layout.ts';

// Reading a pack needs two ranged reads, its first preambleBytes and its tail (tailBytesOf says how
// much of it; 64 KiB covers some 1,400 blobs), never the blobs in between: that is how an index is
// rebuilt from the bucket alone. A blob is then one more ranged read, opened with BlobOpener.

export interface PackIndex {
  dataKey: Buffer;
  entries: PackEntry[];
}

/** The pack's data key: opened with the team secret key, or given (re-sealed to an agent). */
export function packDataKey(preamble: Buffer, key: KeySource, expectedKeyId?: Buffer): Buffer {
  const { keyId, sealedDataKey } = parsePreamble(preamble);
  if ('dataKey' in key) {
    if (expectedKeyId && !keyId.equals(expectedKeyId))
      throw new FormatV2Error('wrong_key', 'wrong key: this pack was sealed to a different team key');
    return key.dataKey;
  }
  const publicKey = publicKeyOf(key.secretKey);
  if (!keyId.equals(keyIdOf(publicKey)))
    throw new FormatV2Error('wrong_key', 'wrong key: this pack was sealed to a different team key');
  const dataKey = openDataKey(sealedDataKey, publicKey, key.secretKey);
  if (!dataKey)
    throw new FormatV2Error('header_altered', 'pack preamble altered: the data key does not open');
  return dataKey;
}

/**
 * The pack's index from its preamble and its last bytes (at least tailBytesOf(tail) of them), given
 * the pack's whole length.
 */
export function openPackIndex(
  preamble: Buffer,
  tail: Buffer,
  packLength: number,
  key: KeySource,
  expectedKeyId?: Buffer,
): PackIndex {
  const dataKey = packDataKey(preamble, key, expectedKeyId);
  const need = tailBytesOf(tail);
  if (packLength < preambleBytes + need)
    throw new FormatV2Error('truncated', 'the pack is shorter than its index says');
  if (tail.length < need) throw new RangeError(`openPackIndex: read the last ${need} bytes of the pack`);
  const sealed = tail.subarray(tail.length - need, tail.length - trailerBytes);
  const index = Buffer.allocUnsafe(sealed.length - indexOverhead);
  const state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  const tag = Buffer.alloc(1);
  sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, sealed.subarray(0, 24), dataKey);
  try {
    sodium.crypto_secretstream_xchacha20poly1305_pull(
      state,
      index,
      tag,
      sealed.subarray(24),
      preamble.subarray(0, preambleBytes),
    );
  } catch {
    throw new FormatV2Error('header_altered', 'the pack index or preamble failed authentication');
  }
  if (tag[0] !== TAG_FINAL) throw new FormatV2Error('header_altered', 'the pack index is not final');
  return { dataKey, entries: decodeIndex(index, packLength - need) };
}

/** Every chunk of a whole pack in memory, in order, each checked: for tests, checks and repacking. */
export function* readPack(
  pack: Buffer,
  key: KeySource,
  dedupKey?: Buffer,
): Generator<{ entry: PackEntry; plain: Buffer }> {
  if (pack.length < preambleBytes + trailerBytes)
    throw new FormatV2Error('truncated', `a pack of ${pack.length} bytes is truncated`);
  const { dataKey, entries } = openPackIndex(pack.subarray(0, preambleBytes), pack, pack.length, key);
  const opener = new BlobOpener(dedupKey);
  for (const entry of entries) {
    const plain = opener.open(dataKey, entry.id, pack.subarray(entry.offset, entry.offset + entry.length));
    if (plain.length !== entry.rawLength)
      throw new FormatV2Error(
        'corrupt_framing',
        `blob ${entry.id.toString('hex')} has another size than indexed`,
      );
    yield { entry, plain };
  }
}

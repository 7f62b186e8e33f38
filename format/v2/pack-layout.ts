import { randomBytes } from 'node:crypto';
import { ABYTES, HEADERBYTES } from '../secretstream.ts';
import { keyIdOf } from '../team-key.ts';
import { sealDataKey } from '../data-key.ts';
import { blobOverhead } from './blob.ts';
import { chunkIdBytes } from './chunk-id.ts';
import { maxChunkBytes } from './chunker.ts';
import { FormatV2Error } from './errors.ts';

// The fixed parts of a pack object, docs/FORMAT.md ("Pack"): preamble, blobs, sealed index, trailer.

const packMagic = Buffer.from('STRKPACK', 'ascii');
const trailerMagic = Buffer.from('STRKPEND', 'ascii');
export const packVersion = 2;
const cipherSecretstream = 1;
export const preambleBytes = 112;
export const trailerBytes = 12;
const entryBytes = chunkIdBytes + 12;
/** An index beyond this is damage: a pack of 16 MiB holds some 400,000 blobs at the very most. */
const maxIndexBytes = 64 * 1024 * 1024;
// Literals (format/secretstream.ts), not sodium's: reading one at load would load libsodium in an idle agent.
export const indexOverhead = HEADERBYTES + ABYTES;

/**
 * Packs fill up to this, then the next starts (the last blob may overshoot it). Some 16 chunks of
 * 1 MiB: few enough objects that requests and per-object costs stay small, small enough that a
 * pack mostly dead is cheap to repack and a restore fetching ranges wastes little.
 */
export const packTargetBytes = 16 * 1024 * 1024;

export interface PackEntry {
  id: Buffer;
  /** Of the blob, from the start of the pack object. */
  offset: number;
  length: number;
  /** The chunk's plaintext bytes. */
  rawLength: number;
}

export function encodePreamble(publicKey: Buffer, dataKey: Buffer): Buffer {
  const out = Buffer.alloc(preambleBytes);
  packMagic.copy(out, 0);
  out[8] = packVersion;
  out[9] = cipherSecretstream;
  keyIdOf(publicKey).copy(out, 16);
  sealDataKey(dataKey, publicKey).copy(out, 32);
  return out;
}

export function parsePreamble(preamble: Buffer): { keyId: Buffer; sealedDataKey: Buffer } {
  if (preamble.length < preambleBytes || !preamble.subarray(0, 8).equals(packMagic))
    throw new FormatV2Error('not_a_pack', 'not a strackt pack (bad magic)');
  if (preamble[8] !== packVersion)
    throw new FormatV2Error('unsupported_version', `unsupported pack version ${preamble[8]}`);
  if (preamble[9] !== cipherSecretstream || preamble.subarray(10, 16).some((b) => b !== 0))
    throw new FormatV2Error('header_altered', 'unknown cipher or flags in the pack preamble');
  return { keyId: preamble.subarray(16, 32), sealedDataKey: preamble.subarray(32, preambleBytes) };
}

export function encodeTrailer(sealedIndexBytes: number): Buffer {
  const out = Buffer.alloc(trailerBytes);
  out.writeUInt32BE(sealedIndexBytes, 0);
  trailerMagic.copy(out, 4);
  return out;
}

/** How many bytes at the end of the pack hold the sealed index and the trailer. */
export function tailBytesOf(tail: Buffer): number {
  if (tail.length < trailerBytes || !tail.subarray(tail.length - 8).equals(trailerMagic))
    throw new FormatV2Error('truncated', 'the pack has no trailer: truncated or not a pack');
  const n = tail.readUInt32BE(tail.length - trailerBytes);
  if (n < indexOverhead + 4 || n > maxIndexBytes)
    throw new FormatV2Error('corrupt_framing', `the pack trailer claims an index of ${n} bytes`);
  return n + trailerBytes;
}

export function encodeIndex(entries: PackEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * entryBytes);
  out.writeUInt32BE(entries.length, 0);
  entries.forEach((e, k) => {
    const at = 4 + k * entryBytes;
    e.id.copy(out, at);
    out.writeUInt32BE(e.offset, at + 32);
    out.writeUInt32BE(e.length, at + 36);
    out.writeUInt32BE(e.rawLength, at + 40);
  });
  return out;
}

/**
 * The entries of an opened index, checked to tile the pack exactly: blobs back to back from the
 * preamble to the index, each of a possible size. An index that authenticates was written by a
 * holder of the team public key, any agent: it is checked like any other input.
 */
export function decodeIndex(plain: Buffer, indexStart: number): PackEntry[] {
  const count = plain.length >= 4 ? plain.readUInt32BE(0) : -1;
  if (count < 0 || plain.length !== 4 + count * entryBytes)
    throw new FormatV2Error('corrupt_framing', 'the pack index has the wrong length for its entries');
  const entries: PackEntry[] = [];
  let expected = preambleBytes;
  for (let k = 0; k < count; k++) {
    const at = 4 + k * entryBytes;
    const e: PackEntry = {
      id: Buffer.from(plain.subarray(at, at + 32)),
      offset: plain.readUInt32BE(at + 32),
      length: plain.readUInt32BE(at + 36),
      rawLength: plain.readUInt32BE(at + 40),
    };
    if (e.offset !== expected || e.length < blobOverhead || e.length > blobOverhead + maxChunkBytes)
      throw new FormatV2Error('corrupt_framing', `pack index entry ${k} is out of place`);
    if (e.rawLength > maxChunkBytes)
      throw new FormatV2Error('corrupt_framing', `pack index entry ${k} claims ${e.rawLength} bytes`);
    expected += e.length;
    entries.push(e);
  }
  if (expected !== indexStart)
    throw new FormatV2Error('corrupt_framing', 'the pack index does not account for every blob byte');
  return entries;
}

/**
 * A fresh pack name, random rather than content-addressed: the control plane mints it and presigns
 * a PUT for it, so an agent can never name, hence overwrite, a pack that exists (docs/FORMAT.md).
 */
export function newPackId(): string {
  return randomBytes(16).toString('hex');
}

/** Packs form one pool per team and destination, shared by every environment of the team there. */
export function packObjectKey(prefix: string, teamId: string, packId: string): string {
  if (!/^[0-9a-f]{32}$/.test(packId)) throw new RangeError('not a pack id');
  const base = [prefix.replace(/^\/+|\/+$/g, ''), teamId].filter(Boolean).join('/');
  return `${base}/packs/${packId.slice(0, 2)}/${packId}`;
}

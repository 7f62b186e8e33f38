import sodium from 'sodium-native';
import { newDataKey } from '../data-key.ts';
import { TAG_FINAL } from '../secretstream.ts';
import { BlobSealer, blobOverhead } from './blob.ts';
import { maxChunkBytes } from './chunker.ts';
import {
  encodeIndex,
  encodePreamble,
  encodeTrailer,
  indexOverhead,
  preambleBytes,
  type PackEntry,
} from './pack-layout.ts';

/**
 * Writes one pack as it fills: the preamble, then each blob as it is added, through `emit` (an
 * upload's part buffer, a file), so a pack is never held twice; finish() adds the sealed index and
 * the trailer and returns the entries for strackt's index. Needs only the team public key. Emitted
 * bytes are valid only until the next add(): copy them, or write them out before returning.
 */
export class PackWriter {
  /** Fresh per pack: a pack repacked or deleted takes no other pack's secrecy with it. */
  readonly dataKey = newDataKey();
  private readonly preamble: Buffer;
  private readonly entries: PackEntry[] = [];
  private size = preambleBytes;
  private finished = false;
  /** Made at the first add: a pack whose blobs are sealed elsewhere needs no zstd context. */
  private sealer: BlobSealer | undefined;

  constructor(
    publicKey: Buffer,
    private readonly emit: (bytes: Buffer) => void,
  ) {
    this.preamble = encodePreamble(publicKey, this.dataKey);
    emit(this.preamble);
  }

  /** Bytes emitted so far: start another pack once this reaches packTargetBytes. */
  get bytes(): number {
    return this.size;
  }

  get count(): number {
    return this.entries.length;
  }

  /** `frame`: the chunk's zstd frame (null: stored raw), when it was compressed beforehand. */
  add(id: Buffer, plain: Uint8Array, frame?: Buffer | null): PackEntry {
    const { blob } = (this.sealer ??= new BlobSealer()).seal(this.dataKey, id, plain, frame);
    const entry = this.reserve(id, blob.length, plain.length);
    this.emit(blob);
    return entry;
  }

  /**
   * The place of a blob the caller seals itself (under dataKey) and writes at entry.offset of the
   * pack, before the next bytes are emitted: nothing is emitted for it here.
   */
  reserve(id: Buffer, blobLength: number, rawLength: number): PackEntry {
    if (this.finished) throw new Error('PackWriter: the pack is finished');
    if (rawLength > maxChunkBytes || blobLength < blobOverhead || blobLength > blobOverhead + maxChunkBytes)
      throw new RangeError('PackWriter: no blob of a chunk the format allows');
    // Index offsets are 32-bit; packs stay near packTargetBytes, far below.
    if (this.size + blobLength > 2 ** 32 - 1) throw new RangeError('PackWriter: the pack is full');
    const entry = { id: Buffer.from(id), offset: this.size, length: blobLength, rawLength };
    this.entries.push(entry);
    this.size += blobLength;
    return entry;
  }

  finish(): PackEntry[] {
    if (this.finished) throw new Error('PackWriter.finish: the pack is finished');
    this.finished = true;
    const index = encodeIndex(this.entries);
    const sealed = Buffer.allocUnsafe(indexOverhead + index.length);
    const state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
    sodium.crypto_secretstream_xchacha20poly1305_init_push(state, sealed.subarray(0, 24), this.dataKey);
    // The preamble as additional data: its key id and sealed key cannot be swapped for another's.
    sodium.crypto_secretstream_xchacha20poly1305_push(
      state,
      sealed.subarray(24),
      index,
      this.preamble,
      TAG_FINAL,
    );
    // The index was the key's last use: every blob is sealed before it (the caller's too).
    state.fill(0);
    this.dataKey.fill(0);
    this.emit(sealed);
    this.emit(encodeTrailer(sealed.length));
    this.size += sealed.length + 12;
    return this.entries;
  }
}

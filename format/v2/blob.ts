import { ABYTES, HEADERBYTES, STATEBYTES } from '../secretstream.ts';
import { zstd } from '../zstd-binding.ts';
import { compressChunk, encodingRaw, encodingZstd, openBlob, sealBlob } from './blob-codec.js';
import { maxChunkBytes } from './chunker.ts';
import { FormatV2Error } from './errors.ts';

// A blob is one chunk sealed alone (docs/FORMAT.md, "Blob"): a secretstream header and one TAG_FINAL
// message of [encoding byte, payload], the chunk id as additional data. Alone, so a restore can fetch
// it by byte range and check it without its neighbours; the id as additional data, so a blob moved
// under another id (a swapped pack entry, a forged index row) fails to open.

export const blobOverhead = HEADERBYTES + ABYTES + 1;

/**
 * The zstd level chunks are written with (any level reads alike). 1, not 3: on the mixed 1 GiB
 * bench data, cut into chunks, level 3 took 4.64 s of CPU for 399.5 MB and level 1 2.89 s for
 * 419.9 MB (+5%). A first backup spends most of its CPU here, with the services held still, and
 * later backups compress only what changed: 38% less of that CPU is worth 5% more storage.
 */
export const chunkZstdLevel = 1;

/** Compresses and seals chunks with one zstd context and scratch buffer for all of them. */
export class BlobSealer {
  private readonly cctx = new (zstd().CCtx)();
  private readonly state = Buffer.alloc(STATEBYTES);
  private scratch = Buffer.allocUnsafe(0);
  private out = Buffer.allocUnsafe(0);

  constructor(private readonly level = chunkZstdLevel) {}

  /**
   * The sealed blob, valid until the next seal() (its buffer is reused: a fresh 1 MiB buffer per
   * chunk, the kernel handing out and zeroing new pages, held sealing to ~100 MB/s here), and
   * whether zstd shrank the chunk (else it is stored raw, for the same bytes). `frame` is the
   * chunk's zstd frame when it was compressed beforehand (null: it does not shrink), and then only
   * plain's length is read (the frame may have been written over the chunk); left out, the chunk is
   * compressed here.
   */
  seal(
    dataKey: Buffer,
    id: Buffer,
    plain: Uint8Array,
    frame?: Buffer | null,
  ): { blob: Buffer; compressed: boolean } {
    if (plain.length > maxChunkBytes) throw new RangeError('chunk larger than the format allows');
    if (this.scratch.length < plain.length + 1) this.scratch = Buffer.allocUnsafe(plain.length + 1);
    let size = 0;
    if (frame === undefined) size = compressChunk(this.cctx, this.scratch.subarray(1), plain, this.level);
    else if (frame) {
      this.scratch.set(frame, 1);
      size = frame.length;
    }
    const compressed = size > 0;
    if (!compressed) this.scratch.set(plain, 1);
    this.scratch[0] = compressed ? encodingZstd : encodingRaw;
    const message = this.scratch.subarray(0, 1 + (compressed ? size : plain.length));
    if (this.out.length < HEADERBYTES + message.length + ABYTES)
      this.out = Buffer.allocUnsafe(HEADERBYTES + plain.length + 1 + ABYTES);
    const blob = this.out.subarray(0, HEADERBYTES + message.length + ABYTES);
    sealBlob(this.state, blob, message, dataKey, id);
    return { blob, compressed };
  }
}

/** Opens blobs and checks each chunk against its id; one zstd context for all of them. */
export class BlobOpener {
  private readonly ctx = {
    state: Buffer.alloc(STATEBYTES),
    tag: Buffer.alloc(1),
    zstd: zstd(),
    dctx: new (zstd().DCtx)(),
  };

  /**
   * @param dedupKey when given, the plaintext's keyed hash must equal the id: a blob authenticates
   *   against its pack's data key, which any holder of the team public key can make, so only this
   *   proves the content is the chunk the manifest names.
   */
  constructor(private readonly dedupKey?: Buffer) {}

  /** The chunk, in a buffer of its own; a blob that is not that chunk throws FormatV2Error. */
  open(dataKey: Buffer, id: Buffer, blob: Uint8Array): Buffer {
    const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
    const opened = openBlob(this.ctx, dataKey, id, bytes, {
      message: Buffer.allocUnsafe(Math.max(0, blob.length - HEADERBYTES - ABYTES)),
      roomFor: (size) => Buffer.allocUnsafe(size),
      maxChunkBytes,
      dedupKey: this.dedupKey,
    });
    if (opened.refused) throw new FormatV2Error(opened.refused.kind, opened.refused.message);
    return opened.plain;
  }
}

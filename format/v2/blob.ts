import sodium from 'sodium-native';
import { ABYTES, HEADERBYTES, STATEBYTES, TAG_FINAL } from '../secretstream.ts';
import { zstd } from '../zstd-binding.ts';
import { chunkIdOf } from './chunk-id.ts';
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

const encodingRaw = 0;
const encodingZstd = 1;

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
    if (frame === undefined) size = this.compress(plain);
    else if (frame) {
      this.scratch.set(frame, 1);
      size = frame.length;
    }
    const compressed = size > 0;
    let message: Buffer;
    if (compressed) {
      this.scratch[0] = encodingZstd;
      message = this.scratch.subarray(0, 1 + size);
    } else {
      this.scratch[0] = encodingRaw;
      this.scratch.set(plain, 1);
      message = this.scratch.subarray(0, 1 + plain.length);
    }
    if (this.out.length < HEADERBYTES + message.length + ABYTES)
      this.out = Buffer.allocUnsafe(HEADERBYTES + plain.length + 1 + ABYTES);
    const blob = this.out.subarray(0, HEADERBYTES + message.length + ABYTES);
    sodium.crypto_secretstream_xchacha20poly1305_init_push(
      this.state,
      blob.subarray(0, HEADERBYTES),
      dataKey,
    );
    sodium.crypto_secretstream_xchacha20poly1305_push(
      this.state,
      blob.subarray(HEADERBYTES),
      message,
      id,
      TAG_FINAL,
    );
    return { blob, compressed };
  }

  /** Into the scratch buffer after the encoding byte: the frame's size, or 0 to store the chunk raw. */
  private compress(plain: Uint8Array): number {
    if (plain.length === 0) return 0;
    try {
      // A destination no larger than the input: zstd refuses when the output would not fit, which
      // is exactly when compression does not pay (random or already compressed data).
      return this.cctx.compress(this.scratch.subarray(1, plain.length), plain, this.level);
    } catch {
      return 0;
    }
  }
}

/** Opens blobs and checks each chunk against its id; one zstd context for all of them. */
export class BlobOpener {
  private readonly dctx = new (zstd().DCtx)();
  private readonly state = Buffer.alloc(STATEBYTES);
  private readonly tag = Buffer.alloc(1);
  /** The sealed message, reused when the chunk is decoded into a buffer of the caller's. */
  private scratch = Buffer.allocUnsafe(0);

  /**
   * @param dedupKey when given, the plaintext's keyed hash must equal the id: a blob authenticates
   *   against its pack's data key, which any holder of the team public key can make, so only this
   *   proves the content is the chunk the manifest names.
   */
  constructor(private readonly dedupKey?: Buffer) {}

  /**
   * The chunk, in a buffer of its own, or decoded into `into` (a chunk larger than it fails as
   * corrupt): a restore decodes into memory its threads share, instead of a fresh buffer per chunk.
   */
  open(dataKey: Buffer, id: Buffer, blob: Uint8Array, into?: Buffer): Buffer {
    if (blob.length < blobOverhead || blob.length > blobOverhead + maxChunkBytes)
      throw new FormatV2Error('corrupt_framing', `blob ${hex(id)}: ${blob.length} bytes is no blob`);
    const messageLength = blob.length - HEADERBYTES - ABYTES;
    if (into && this.scratch.length < messageLength) this.scratch = Buffer.allocUnsafe(1 + maxChunkBytes);
    const message = into ? this.scratch.subarray(0, messageLength) : Buffer.allocUnsafe(messageLength);
    const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(
      this.state,
      bytes.subarray(0, HEADERBYTES),
      dataKey,
    );
    try {
      sodium.crypto_secretstream_xchacha20poly1305_pull(
        this.state,
        message,
        this.tag,
        bytes.subarray(HEADERBYTES),
        id,
      );
    } catch {
      throw new FormatV2Error('blob_altered', `blob ${hex(id)} failed authentication: altered or moved`);
    }
    if (this.tag[0] !== TAG_FINAL) throw new FormatV2Error('blob_altered', `blob ${hex(id)} is not final`);
    const plain = this.decode(id, message, into);
    if (this.dedupKey && !chunkIdOf(this.dedupKey, plain).equals(id))
      throw new FormatV2Error('chunk_mismatch', `blob ${hex(id)} holds other content than its id says`);
    return plain;
  }

  private decode(id: Buffer, message: Buffer, into?: Buffer): Buffer {
    const payload = message.subarray(1);
    const room = into?.length ?? maxChunkBytes;
    if (message[0] === encodingRaw) {
      if (!into) return payload;
      if (payload.length > room)
        throw new FormatV2Error('corrupt_framing', `blob ${hex(id)}: larger than its chunk`);
      payload.copy(into);
      return into.subarray(0, payload.length);
    }
    if (message[0] !== encodingZstd)
      throw new FormatV2Error('corrupt_framing', `blob ${hex(id)}: unknown encoding ${message[0]}`);
    let size: number | null;
    try {
      size = zstd().getFrameContentSize(payload);
    } catch {
      size = null;
    }
    if (size === null || size > room)
      throw new FormatV2Error('corrupt_framing', `blob ${hex(id)}: no zstd frame of a chunk's size`);
    const plain = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    let n: number;
    try {
      n = this.dctx.decompress(plain, payload);
    } catch {
      n = -1;
    }
    if (n !== size) throw new FormatV2Error('corrupt_framing', `blob ${hex(id)}: its zstd frame is corrupt`);
    return plain;
  }
}

const hex = (id: Buffer) => id.toString('hex').slice(0, 16);

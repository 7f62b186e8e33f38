import { Transform, type TransformCallback } from 'node:stream';
import sodium from 'sodium-native';
import {
  ABYTES,
  defaultChunkSize,
  maxChunkSize,
  newHeader,
  TAG_FINAL,
  TAG_MESSAGE,
  type Compression,
} from './container-layout.ts';

export interface EncryptOptions {
  /** The team public key: all a writer needs, so a server that backs up can never read a backup. */
  publicKey: Buffer;
  /** The snapshot's data key; both objects of a snapshot share it, each in its own stream. */
  dataKey: Buffer;
  compression: Compression;
  chunkSize?: number;
}

/**
 * The container writer without a stream around it: plaintext in, the header and then
 * length-framed secretstream chunks out through `emit`, the last chunk final. A producer can write
 * straight into space() and commit() what it wrote (the archive writer has zstd compress into it),
 * sparing a copy; write() copies.
 */
export class ContainerSealer {
  private readonly state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  readonly chunkSize: number;
  private pending: Buffer;
  private filled = 0;
  /** A full chunk, sealed only once more data arrives: the last chunk must carry TAG_FINAL. */
  private held: Buffer | undefined;
  private spare: Buffer | undefined;
  private readonly frames: Buffer[] = [];
  private header: Buffer | undefined;

  constructor(
    options: EncryptOptions,
    private readonly emit: (bytes: Buffer) => void,
  ) {
    this.chunkSize = options.chunkSize ?? defaultChunkSize;
    if (this.chunkSize < 1 || this.chunkSize > maxChunkSize) throw new RangeError('chunk size out of range');
    this.pending = Buffer.allocUnsafe(this.chunkSize);
    const header = newHeader(options.publicKey, options.dataKey, options.compression, this.chunkSize);
    sodium.crypto_secretstream_xchacha20poly1305_init_push(
      this.state,
      header.subarray(112, 136),
      options.dataKey,
    );
    this.header = header;
  }

  /**
   * Gives back a frame emitted earlier, once its consumer is done with it (a write callback), to
   * hold a later chunk: sealing into fresh 1 MiB buffers cost 0.1 s of CPU more per 400 MiB, the
   * kernel handing out and zeroing new pages.
   */
  recycle(frame: Buffer): void {
    if (frame.length === 4 + this.chunkSize + ABYTES && this.frames.length < 4) this.frames.push(frame);
  }

  private seal(plain: Buffer, tag: number): void {
    const size = 4 + plain.length + ABYTES;
    const out = (plain.length === this.chunkSize && this.frames.pop()) || Buffer.allocUnsafe(size);
    out.writeUInt32BE(plain.length + ABYTES, 0);
    // The header rides as the first chunk's additional data, so no header field can be altered unseen.
    const ad = this.header ?? null;
    sodium.crypto_secretstream_xchacha20poly1305_push(this.state, out.subarray(4), plain, ad, tag);
    if (this.header) {
      this.emit(this.header);
      this.header = undefined;
    }
    this.emit(out);
  }

  /** The free room of the chunk being filled, never empty: write plaintext there, then commit() it. */
  space(): Buffer {
    if (this.filled === this.chunkSize) {
      this.held = this.pending;
      this.pending = this.spare ?? Buffer.allocUnsafe(this.chunkSize);
      this.spare = undefined;
      this.filled = 0;
    }
    return this.pending.subarray(this.filled);
  }

  /** Takes the n bytes just written at the start of space(). */
  commit(n: number): void {
    if (n === 0) return;
    this.filled += n;
    if (this.held) {
      this.seal(this.held, TAG_MESSAGE);
      this.spare = this.held;
      this.held = undefined;
    }
  }

  write(data: Buffer): void {
    for (let offset = 0; offset < data.length;) {
      const n = data.copy(this.space(), 0, offset);
      this.commit(n);
      offset += n;
    }
  }

  /** Seals the last chunk, final (an empty one for an empty payload). */
  end(): void {
    if (this.held && this.filled === 0) this.seal(this.held, TAG_FINAL);
    else {
      if (this.held) this.seal(this.held, TAG_MESSAGE);
      this.seal(this.pending.subarray(0, this.filled), TAG_FINAL);
    }
    this.held = undefined;
  }
}

/** Plaintext in, container out: ContainerSealer as a stream. */
export class EncryptStream extends Transform {
  private readonly sealer: ContainerSealer;

  constructor(options: EncryptOptions) {
    super();
    this.sealer = new ContainerSealer(options, (bytes) => this.push(bytes));
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sealer.write(data);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.sealer.end();
    done();
  }
}

import { Transform, type TransformCallback } from 'node:stream';
import sodium from 'sodium-native';
import { keyIdOf, publicKeyOf } from './team-key.ts';

// Layout and meaning of every field: docs/FORMAT.md ("Container").
const magic = Buffer.from('STRKSNAP', 'ascii');
export const formatVersion = 1;
const cipherSecretstream = 1;
export const headerBytes = 136;
const maxChunkSize = 16 * 1024 * 1024;
export const defaultChunkSize = 1024 * 1024;
const ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES;
const TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
const TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;

export type Compression = 'none' | 'zstd';

export type FormatErrorKind =
  | 'not_a_snapshot'
  | 'unsupported_version'
  | 'wrong_key'
  | 'header_altered'
  | 'chunk_altered'
  | 'corrupt_framing'
  | 'truncated'
  | 'trailing_data';

export class SnapshotFormatError extends Error {
  override name = 'SnapshotFormatError';
  constructor(
    readonly kind: FormatErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export function newDataKey(): Buffer {
  const key = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES);
  sodium.crypto_secretstream_xchacha20poly1305_keygen(key);
  return key;
}

export function sealDataKey(dataKey: Buffer, publicKey: Buffer): Buffer {
  const sealed = Buffer.alloc(dataKey.length + sodium.crypto_box_SEALBYTES);
  sodium.crypto_box_seal(sealed, dataKey, publicKey);
  return sealed;
}

/** The data key inside a sealed box, or undefined when this key pair cannot open it. */
export function openDataKey(sealed: Buffer, publicKey: Buffer, secretKey: Buffer): Buffer | undefined {
  const dataKey = Buffer.alloc(sealed.length - sodium.crypto_box_SEALBYTES);
  return sodium.crypto_box_seal_open(dataKey, sealed, publicKey, secretKey) ? dataKey : undefined;
}

export interface EncryptOptions {
  /** The team public key: all a writer needs, so a server that backs up can never read a backup. */
  publicKey: Buffer;
  /** The snapshot's data key; both objects of a snapshot share it, each in its own stream. */
  dataKey: Buffer;
  compression: Compression;
  chunkSize?: number;
}

/** Plaintext in, container out: header, then length-framed secretstream chunks, the last one final. */
export class EncryptStream extends Transform {
  private readonly state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  private readonly chunkSize: number;
  private pending: Buffer;
  private filled = 0;
  private header: Buffer | undefined;

  constructor(options: EncryptOptions) {
    super();
    this.chunkSize = options.chunkSize ?? defaultChunkSize;
    if (this.chunkSize < 1 || this.chunkSize > maxChunkSize) throw new RangeError('chunk size out of range');
    this.pending = Buffer.allocUnsafe(this.chunkSize);
    const header = Buffer.alloc(headerBytes);
    magic.copy(header, 0);
    header[8] = formatVersion;
    header[9] = cipherSecretstream;
    header[10] = options.compression === 'zstd' ? 1 : 0;
    header[11] = 0;
    header.writeUInt32BE(this.chunkSize, 12);
    keyIdOf(options.publicKey).copy(header, 16);
    sealDataKey(options.dataKey, options.publicKey).copy(header, 32);
    sodium.crypto_secretstream_xchacha20poly1305_init_push(
      this.state,
      header.subarray(112, 136),
      options.dataKey,
    );
    this.header = header;
  }

  private seal(plain: Buffer, tag: number): void {
    const out = Buffer.allocUnsafe(4 + plain.length + ABYTES);
    out.writeUInt32BE(plain.length + ABYTES, 0);
    // The header rides as the first chunk's additional data, so no header field can be altered unseen.
    const ad = this.header ?? null;
    sodium.crypto_secretstream_xchacha20poly1305_push(this.state, out.subarray(4), plain, ad, tag);
    if (this.header) {
      this.push(this.header);
      this.header = undefined;
    }
    this.push(out);
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(this.chunkSize - this.filled, data.length - offset);
      data.copy(this.pending, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      // A full chunk is sealed only once more data arrives: the last chunk must carry TAG_FINAL.
      if (this.filled === this.chunkSize && offset < data.length) {
        this.seal(this.pending, TAG_MESSAGE);
        this.filled = 0;
      }
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.seal(this.pending.subarray(0, this.filled), TAG_FINAL);
    done();
  }
}

export interface ContainerHeader {
  compression: Compression;
  chunkSize: number;
  keyId: Buffer;
}

/** Checks the fixed fields of a container header and reads the rest. */
export function parseHeader(header: Buffer): ContainerHeader {
  if (header.length < headerBytes || !header.subarray(0, 8).equals(magic)) {
    throw new SnapshotFormatError('not_a_snapshot', 'not a strackt snapshot (bad magic)');
  }
  if (header[8] !== formatVersion) {
    throw new SnapshotFormatError('unsupported_version', `unsupported snapshot format version ${header[8]}`);
  }
  if (header[9] !== cipherSecretstream || header[11] !== 0 || (header[10] !== 0 && header[10] !== 1)) {
    throw new SnapshotFormatError(
      'header_altered',
      'unknown cipher, compression or flags in the snapshot header',
    );
  }
  const chunkSize = header.readUInt32BE(12);
  if (chunkSize < 1 || chunkSize > maxChunkSize) {
    throw new SnapshotFormatError(
      'header_altered',
      `chunk size ${chunkSize} out of range in the snapshot header`,
    );
  }
  return {
    compression: header[10] === 1 ? 'zstd' : 'none',
    chunkSize,
    keyId: Buffer.from(header.subarray(16, 32)),
  };
}

export type KeySource = { secretKey: Buffer } | { dataKey: Buffer };

/**
 * Container in, plaintext out. Opens the data key with the team secret key (control plane, or a
 * customer restoring by hand) or takes the data key itself (an agent, to which the control plane
 * re-sealed it). Every failure says which of the FORMAT.md cases it is.
 */
export class DecryptStream extends Transform {
  private readonly state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private header: ContainerHeader | undefined;
  private headerRaw: Buffer | undefined;
  private chunkIndex = 0;
  private finished = false;
  bytesOut = 0;

  constructor(
    private readonly key: KeySource,
    private readonly expectedKeyId?: Buffer,
  ) {
    super();
  }

  get containerHeader(): ContainerHeader | undefined {
    return this.header;
  }

  private takeBytes(n: number): Buffer {
    const all =
      this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length ? [rest] : [];
    this.bufferedBytes = rest.length;
    return out;
  }

  private openHeader(raw: Buffer): void {
    const header = parseHeader(raw);
    let dataKey: Buffer;
    if ('secretKey' in this.key) {
      const publicKey = publicKeyOf(this.key.secretKey);
      if (!header.keyId.equals(keyIdOf(publicKey))) {
        throw new SnapshotFormatError(
          'wrong_key',
          'wrong key: this snapshot was sealed to a different team key',
        );
      }
      const opened = openDataKey(raw.subarray(32, 112), publicKey, this.key.secretKey);
      if (!opened)
        throw new SnapshotFormatError(
          'header_altered',
          'snapshot header altered: the sealed data key does not open',
        );
      dataKey = opened;
    } else {
      if (this.expectedKeyId && !header.keyId.equals(this.expectedKeyId)) {
        throw new SnapshotFormatError(
          'wrong_key',
          'wrong key: this snapshot was sealed to a different team key',
        );
      }
      dataKey = this.key.dataKey;
    }
    // Any stream header is accepted here; an altered one fails the first chunk's authentication.
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(this.state, raw.subarray(112, 136), dataKey);
    this.header = header;
    this.headerRaw = Buffer.from(raw);
  }

  private drain(): void {
    if (!this.header) {
      if (this.bufferedBytes < headerBytes) return;
      this.openHeader(this.takeBytes(headerBytes));
    }
    const maxFrame = this.header!.chunkSize + ABYTES;
    while (this.bufferedBytes >= 4) {
      if (this.finished)
        throw new SnapshotFormatError('trailing_data', 'trailing data after the final chunk');
      const first = this.buffered[0]!.length >= 4 ? this.buffered[0]! : Buffer.concat(this.buffered);
      const n = first.readUInt32BE(0);
      if (n < ABYTES || n > maxFrame) {
        throw new SnapshotFormatError(
          'corrupt_framing',
          `corrupt framing: chunk ${this.chunkIndex} claims ${n} bytes`,
        );
      }
      if (this.bufferedBytes < 4 + n) return;
      const frame = this.takeBytes(4 + n).subarray(4);
      const plain = Buffer.allocUnsafe(n - ABYTES);
      const tag = Buffer.alloc(1);
      const ad = this.chunkIndex === 0 ? this.headerRaw! : null;
      try {
        sodium.crypto_secretstream_xchacha20poly1305_pull(this.state, plain, tag, frame, ad);
      } catch {
        // sodium-native throws on a failed authentication; the state is then unusable, as it should be.
        throw this.chunkIndex === 0
          ? new SnapshotFormatError(
              'header_altered',
              'snapshot header or first chunk altered: authentication failed',
            )
          : new SnapshotFormatError(
              'chunk_altered',
              `chunk ${this.chunkIndex} failed authentication: altered, dropped or reordered`,
            );
      }
      this.chunkIndex++;
      if (tag[0] === TAG_FINAL) this.finished = true;
      else if (tag[0] !== TAG_MESSAGE)
        throw new SnapshotFormatError('chunk_altered', `chunk ${this.chunkIndex} has an unknown tag`);
      this.bytesOut += plain.length;
      if (plain.length) this.push(plain);
    }
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.finished && data.length)
      return done(new SnapshotFormatError('trailing_data', 'trailing data after the final chunk'));
    this.buffered.push(data);
    this.bufferedBytes += data.length;
    try {
      this.drain();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.finished && this.bufferedBytes > 0) {
      return done(new SnapshotFormatError('trailing_data', 'trailing data after the final chunk'));
    }
    if (!this.finished) {
      return done(
        new SnapshotFormatError(
          'truncated',
          this.header
            ? `truncated: the stream ends after chunk ${this.chunkIndex - 1} without its final chunk`
            : 'truncated: incomplete header',
        ),
      );
    }
    done();
  }
}

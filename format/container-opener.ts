import { Transform, type TransformCallback } from 'node:stream';
import sodium from 'sodium-native';
import {
  ABYTES,
  headerBytes,
  parseHeader,
  TAG_FINAL,
  TAG_MESSAGE,
  type ContainerHeader,
} from './container-layout.ts';
import { openDataKey, type KeySource } from './data-key.ts';
import { SnapshotFormatError } from './format-error.ts';
import { keyIdOf, publicKeyOf } from './team-key.ts';

const empty = Buffer.alloc(0);

/**
 * The container reader without a stream around it: container bytes in through push(), plaintext
 * chunks out of next(), every failure one of the FORMAT.md cases. Opens the data key with the team
 * secret key (control plane, or a customer restoring by hand) or takes the data key itself (an
 * agent, to which the control plane re-sealed it). Synchronous and copy-free where it can be (the
 * unpacker feeds zstd from it directly): a header or frame split across input buffers is assembled
 * in one reused scratch buffer, and with reuseOutput the plaintext goes to one reused buffer too.
 * The stream version concatenated frames that straddled its input chunks and allocated each
 * plaintext afresh: 0.26 s per GB of tar in the profile, mostly page faults on new memory.
 */
export class ContainerOpener {
  private readonly state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  private input: Buffer = empty;
  private pos = 0;
  private scratch: Buffer | undefined;
  private scratchFill = 0;
  private frameLength = -1;
  private plain: Buffer | undefined;
  private header: ContainerHeader | undefined;
  private headerRaw: Buffer | undefined;
  private chunkIndex = 0;
  private finished = false;
  bytesOut = 0;

  /**
   * @param reuseOutput when true, a chunk returned by next() is only valid until the following
   *   call (its buffer is reused); when false every chunk is a fresh buffer.
   */
  constructor(
    private readonly key: KeySource,
    private readonly expectedKeyId?: Buffer,
    private readonly reuseOutput = false,
  ) {}

  get containerHeader(): ContainerHeader | undefined {
    return this.header;
  }

  /** True once the input given so far is used up (decrypted or copied aside): push more. */
  get needsInput(): boolean {
    return this.pos >= this.input.length;
  }

  /** Adds container bytes; call only when needsInput. The buffer is not kept once needsInput is true again. */
  push(data: Buffer): void {
    if (!this.needsInput) throw new Error('ContainerOpener.push: the previous input is not used up');
    if (this.finished && data.length)
      throw new SnapshotFormatError('trailing_data', 'trailing data after the final chunk');
    this.input = data;
    this.pos = 0;
  }

  /** Drops the input once used up: the caller may then reuse or hand over its memory. */
  private release(): void {
    if (this.pos >= this.input.length) {
      this.input = empty;
      this.pos = 0;
    }
  }

  /** n bytes, from the input directly when they are all there, else assembled in scratch; undefined if not yet available. */
  private take(n: number): Buffer | undefined {
    const input = this.input;
    const available = input.length - this.pos;
    if (this.scratchFill === 0 && available >= n) {
      this.pos += n;
      const out = input.subarray(this.pos - n, this.pos);
      this.release();
      return out;
    }
    if (!this.scratch || this.scratch.length < n) {
      const grown = Buffer.allocUnsafe(n);
      this.scratch?.copy(grown, 0, 0, this.scratchFill);
      this.scratch = grown;
    }
    const k = Math.min(n - this.scratchFill, available);
    input.copy(this.scratch, this.scratchFill, this.pos, this.pos + k);
    this.pos += k;
    this.scratchFill += k;
    this.release();
    if (this.scratchFill < n) return undefined;
    this.scratchFill = 0;
    return this.scratch.subarray(0, n);
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

  /** The next non-empty plaintext chunk, or undefined when more input is needed (or the stream is over). */
  next(): Buffer | undefined {
    for (;;) {
      if (!this.header) {
        const raw = this.take(headerBytes);
        if (!raw) return undefined;
        this.openHeader(raw);
      }
      if (this.finished) {
        if (!this.needsInput)
          throw new SnapshotFormatError('trailing_data', 'trailing data after the final chunk');
        return undefined;
      }
      if (this.frameLength < 0) {
        const prefix = this.take(4);
        if (!prefix) return undefined;
        const n = prefix.readUInt32BE(0);
        if (n < ABYTES || n > this.header!.chunkSize + ABYTES) {
          throw new SnapshotFormatError(
            'corrupt_framing',
            `corrupt framing: chunk ${this.chunkIndex} claims ${n} bytes`,
          );
        }
        this.frameLength = n;
      }
      const frame = this.take(this.frameLength);
      if (!frame) return undefined;
      this.frameLength = -1;
      const size = frame.length - ABYTES;
      let plain: Buffer;
      if (this.reuseOutput) {
        if (!this.plain || this.plain.length < size) this.plain = Buffer.allocUnsafe(this.header!.chunkSize);
        plain = this.plain.subarray(0, size);
      } else plain = Buffer.allocUnsafe(size);
      const ad = this.chunkIndex === 0 ? this.headerRaw! : null;
      const tag = Buffer.alloc(1);
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
      if (plain.length) return plain;
    }
  }

  /** Call at the end of the input: throws unless the final chunk came, and nothing after it. */
  end(): void {
    if (this.finished && (!this.needsInput || this.scratchFill > 0)) {
      throw new SnapshotFormatError('trailing_data', 'trailing data after the final chunk');
    }
    if (!this.finished) {
      throw new SnapshotFormatError(
        'truncated',
        this.header
          ? `truncated: the stream ends after chunk ${this.chunkIndex - 1} without its final chunk`
          : 'truncated: incomplete header',
      );
    }
  }
}

/** Container in, plaintext out: ContainerOpener as a stream. */
export class DecryptStream extends Transform {
  private readonly opener: ContainerOpener;

  constructor(key: KeySource, expectedKeyId?: Buffer) {
    super();
    this.opener = new ContainerOpener(key, expectedKeyId);
  }

  get containerHeader(): ContainerHeader | undefined {
    return this.opener.containerHeader;
  }

  get bytesOut(): number {
    return this.opener.bytesOut;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.opener.push(data);
      for (let plain = this.opener.next(); plain; plain = this.opener.next()) this.push(plain);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.opener.end();
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

import { Writable } from 'node:stream';

// A streaming reader of the POSIX pax tar subset GNU tar writes with --format=pax. It never buffers
// file contents: data reaches the handler in the slices it arrived in.

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarHeader {
  path: string;
  type: TarEntryType;
  /** The raw typeflag, to name refused entries precisely (3 = char device, 4 = block device, 6 = FIFO). */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkTarget: string;
  /** Offset of this entry's first header block (its pax header, if any) in the archive. */
  offset: number;
}

export interface EntrySink {
  data?(chunk: Buffer): void | Promise<void>;
  end?(): void | Promise<void>;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

const BLOCK = 512;

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? length : nul).toString('utf8');
}

// Numbers are read strictly: a field that is not a number is a forged or damaged archive, and a
// lenient reading (parseInt stops at the first bad character) would make it say something else.
function number(block: Buffer, start: number, length: number, field: string): number {
  // GNU base-256 for values that do not fit in octal: 0x80 first; 0xff would be a negative number.
  if (block[start]! & 0x80) {
    if (block[start] !== 0x80) throw new TarFormatError(`negative ${field} in a tar header`);
    let value = 0;
    for (let i = 1; i < length; i++) value = value * 256 + block[start + i]!;
    if (!Number.isSafeInteger(value)) throw new TarFormatError(`${field} out of range in a tar header`);
    return value;
  }
  const raw = text(block, start, length).replace(/^ +| +$/g, '');
  if (raw === '') return 0;
  if (!/^[0-7]+$/.test(raw)) throw new TarFormatError(`${field} is not an octal number in a tar header`);
  return parseInt(raw, 8);
}

/** A pax record's number: decimal digits only (mtime may be signed and fractional), within range. */
function paxNumber(value: string | undefined, key: string, fraction = false): number | undefined {
  if (value === undefined) return undefined;
  const format = fraction ? /^-?\d{1,15}(\.\d{1,9})?$/ : /^\d{1,15}$/;
  const n = Number(value);
  if (!format.test(value) || !Number.isSafeInteger(Math.trunc(n)))
    throw new TarFormatError(`pax ${key} is not a number: ${JSON.stringify(value.slice(0, 40))}`);
  return n;
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === number(block, 148, 8, 'checksum');
}

function typeOf(flag: string): TarEntryType {
  if (flag === '0' || flag === '\0' || flag === '' || flag === '7') return 'file';
  if (flag === '5') return 'directory';
  if (flag === '2') return 'symlink';
  if (flag === '1') return 'hardlink';
  return 'other';
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    const digits = space < 0 ? '' : data.subarray(offset, space).toString('ascii');
    const length = /^[1-9]\d{0,7}$/.test(digits) ? Number(digits) : 0;
    if (!length || offset + length > data.length || data[offset + length - 1] !== 0x0a)
      throw new TarFormatError('malformed pax header');
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new TarFormatError('malformed pax header');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return out;
}

/**
 * Reads a tar stream written to it and calls onEntry for every entry; the returned sink gets the
 * entry's data. Handlers may be async: the stream applies backpressure until they settle.
 */
export class TarParser extends Writable {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private remaining = 0; // data bytes left in the current entry
  private padding = 0; // zero bytes after the current entry's data
  private sink: EntrySink | undefined;
  private paxData: Buffer[] | undefined;
  private pax: Record<string, string> = {};
  private entryStart = -1;
  private ended = false;
  /** Bytes of tar consumed so far. */
  bytes = 0;

  constructor(private readonly onEntry: (header: TarHeader) => EntrySink | Promise<EntrySink>) {
    super();
  }

  get complete(): boolean {
    return this.ended;
  }

  /**
   * Removes n buffered bytes from the front. Bytes straddling two chunks (a header split across
   * them) are copied, those n only: file data always stays a view of the chunk it arrived in.
   */
  private take(n: number): Buffer {
    const first = this.pending[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (n === first.length) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      for (let have = 0; have < n;) {
        const part = this.pending[0]!;
        const k = Math.min(part.length, n - have);
        part.copy(out, have, 0, k);
        have += k;
        if (k === part.length) this.pending.shift();
        else this.pending[0] = part.subarray(k);
      }
    }
    this.pendingBytes -= n;
    this.bytes += n;
    return out;
  }

  private takeBlock(): Buffer | undefined {
    return this.pendingBytes < BLOCK ? undefined : this.take(BLOCK);
  }

  private async header(block: Buffer): Promise<void> {
    if (block.every((b) => b === 0)) {
      this.ended = true; // end-of-archive marker; what follows is padding
      return;
    }
    if (!checksumOk(block)) throw new TarFormatError(`bad header checksum at byte ${this.bytes - BLOCK}`);
    if (this.entryStart < 0) this.entryStart = this.bytes - BLOCK;
    const flag = String.fromCharCode(block[156]!);
    const size = number(block, 124, 12, 'size');
    if (flag === 'x' || flag === 'g') {
      if (size > 1024 * 1024) throw new TarFormatError('pax header over 1 MiB');
      this.paxData = flag === 'x' ? [] : undefined;
      this.startData(size, flag === 'x' ? { data: (c) => void this.paxData!.push(Buffer.from(c)) } : {});
      return;
    }
    const prefix = text(block, 345, 155);
    const name = text(block, 0, 100);
    const pax = this.pax;
    this.pax = {};
    const header: TarHeader = {
      path: pax.path ?? (prefix ? `${prefix}/${name}` : name),
      type: typeOf(flag),
      typeflag: flag,
      mode: number(block, 100, 8, 'mode'),
      uid: paxNumber(pax.uid, 'uid') ?? number(block, 108, 8, 'uid'),
      gid: paxNumber(pax.gid, 'gid') ?? number(block, 116, 8, 'gid'),
      size: paxNumber(pax.size, 'size') ?? size,
      mtime: paxNumber(pax.mtime, 'mtime', true) ?? number(block, 136, 12, 'mtime'),
      linkTarget: pax.linkpath ?? text(block, 157, 100),
      offset: this.entryStart,
    };
    this.entryStart = -1;
    const dataBytes = header.type === 'file' ? header.size : 0;
    this.startData(dataBytes, await this.onEntry(header));
  }

  private startData(size: number, sink: EntrySink): void {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.sink = sink;
  }

  private async finishEntry(): Promise<void> {
    const sink = this.sink!;
    this.sink = undefined;
    await sink.end?.();
    if (this.paxData) {
      this.pax = parsePax(Buffer.concat(this.paxData));
      this.paxData = undefined;
    }
  }

  private async consume(): Promise<void> {
    for (;;) {
      if (this.ended) {
        this.bytes += this.pendingBytes;
        this.pending = [];
        this.pendingBytes = 0;
        return;
      }
      if (this.sink) {
        while (this.remaining > 0 && this.pendingBytes > 0) {
          const n = Math.min(this.pending[0]!.length, this.remaining);
          this.remaining -= n;
          await this.sink.data?.(this.take(n));
        }
        if (this.remaining > 0) return;
        while (this.padding > 0 && this.pendingBytes > 0) {
          this.padding -= this.take(Math.min(this.pending[0]!.length, this.padding)).length;
        }
        if (this.padding > 0) return;
        await this.finishEntry();
        continue;
      }
      const block = this.takeBlock();
      if (!block) return;
      await this.header(block);
    }
  }

  /**
   * Parses one chunk, calling the handlers; resolves once it is used up. Nothing refers to the
   * chunk afterwards (a partial header left at its end is copied), so the caller may reuse or
   * hand over its memory then. Data slices given to sinks are views of the chunk itself.
   */
  async feed(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    await this.consume();
    for (let i = 0; i < this.pending.length; i++) this.pending[i] = Buffer.from(this.pending[i]!);
  }

  /** Throws unless the archive ended properly. */
  finish(): void {
    if (this.sink || !this.ended) throw new TarFormatError('truncated tar archive: no end-of-archive marker');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.feed(chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    try {
      this.finish();
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

import net from 'node:net';
import tls from 'node:tls';
import { CertificateMismatchError, pinnedConnection, connectTarget } from '../storage/pinned-client.ts';
import type { StorageUrl } from './storage-url.ts';

/** Content-Range `bytes start-last/total` from the start asked, ending at the object's end before the range's. */
function shortObject(contentRange: string | undefined, range: { start: number; end: number }): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange ?? '');
  if (!m) return false;
  const [start, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return start === range.start && last + 1 === total && total < range.end;
}

export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

// Socket reads land in buffers of this size, reused for the whole download.
const readBytes = 1024 * 1024;
// A response head longer than this is not a storage's.
const maxHeadBytes = 64 * 1024;

/** Bytes [start, end) of an object: asked with a Range header, answered 206 with exactly those. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * An object's bytes as they arrive. Each chunk is a view of a read buffer that is reused once the
 * next chunk is asked for, so a consumer that keeps chunks copies them.
 */
export interface DownloadBody extends AsyncIterable<Buffer> {
  /** The object's size, from the response's Content-Length. */
  readonly length: number;
}

/**
 * A GET on a storage URL (a presigned bucket URL, or a receiver's with its certificate pin), on a
 * socket of its own whose reads land in reused buffers, resolving once a 200 answer's head is in.
 *
 * Not Node's HTTP client: it copies every chunk of a body into a new buffer, besides the new buffer
 * of every socket read. In the agent, whose JavaScript heap is small (~26 MiB), V8 started a full
 * garbage collection for every ~10 MiB of such memory: ~30 per GiB restored, costing 1.2 s of CPU on
 * V8's threads and pauses on the unpacker's (measured with --trace-gc and per-thread CPU), beside
 * the copies themselves. Storage answers a GET of an object with a Content-Length (S3's API and the
 * receiver both do); an answer without one is refused rather than guessed at.
 */
export async function download(
  target: StorageUrl,
  signal?: AbortSignal,
  range?: ByteRange,
): Promise<DownloadBody> {
  signal?.throwIfAborted();
  const url = new URL(target.url);
  const reader = new ResponseReader(signal, range);
  let socket: net.Socket;
  try {
    socket = await connect(url, target.pin, { buffer: reader.readBuffer, callback: reader.onRead }, signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (err instanceof CertificateMismatchError) throw err;
    throw new DownloadError(`downloading failed: ${(err as Error).message}`);
  }
  if (signal?.aborted) {
    socket.destroy();
    throw signal.reason;
  }
  reader.attach(socket);
  const rangeHeader = range ? `Range: bytes=${range.start}-${range.end - 1}\r\n` : '';
  socket.write(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${rangeHeader}Connection: close\r\n\r\n`,
  );
  return reader.body();
}

function connect(
  url: URL,
  pin: StorageUrl['pin'],
  onread: net.OnReadOpts,
  signal?: AbortSignal,
): Promise<net.Socket> {
  const secure = url.protocol === 'https:';
  if (pin) return pinnedConnection(url, pin, onread);
  const { host, port, servername } = connectTarget(url, secure ? 443 : 80);
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({ host, port, servername, ...{ onread } }) // onread: not in tls' typings, taken as by net
      : net.connect({ host, port, onread });
    // A cancelled activity must not wait for a slow connection to its end.
    const abort = () => socket.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', abort, { once: true });
    // The listener stays: an error in the same tick as the connection would otherwise find none.
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', abort);
      reject(err);
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      signal?.removeEventListener('abort', abort);
      resolve(socket);
    });
  });
}

/**
 * The response to one GET, fed by the socket's reads: its head parsed, then its body handed on
 * chunk by chunk. The socket pauses while a chunk is with the consumer; TLS may still hand over what
 * it had decrypted, so chunks queue, each in a buffer of its own until the consumer is past it.
 */
class ResponseReader {
  private socket!: net.Socket;
  private head: Buffer[] = [];
  private headLength = 0;
  private length = -1; // the body's, once the head is in
  private received = 0;
  private readonly queue: Buffer[] = []; // read, not yet taken
  private held: Buffer | undefined; // the chunk the consumer has
  private readonly spare: Buffer[] = []; // read buffers no chunk is in
  private finished = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private headIn!: { resolve: () => void; reject: (err: Error) => void };
  private readonly headPromise = new Promise<void>((resolve, reject) => (this.headIn = { resolve, reject }));

  constructor(
    private readonly signal?: AbortSignal,
    private readonly range?: ByteRange,
  ) {}

  attach(socket: net.Socket): void {
    this.socket = socket;
    const abort = () => this.fail(this.signal!.reason as Error);
    this.signal?.addEventListener('abort', abort, { once: true });
    socket.once('close', () => {
      this.signal?.removeEventListener('abort', abort);
      if (this.received !== this.length)
        this.fail(
          new DownloadError(
            this.length < 0
              ? 'downloading failed: the storage closed the connection without an answer'
              : `downloading failed: the connection closed after ${this.received} of ${this.length} bytes`,
          ),
        );
    });
    socket.on('error', (err) => this.fail(new DownloadError(`downloading failed: ${err.message}`)));
  }

  /** net's onread buffer, asked for before every read: one no chunk in the queue or with the consumer is in. */
  readonly readBuffer = (): Buffer => this.spare.pop() ?? Buffer.allocUnsafe(readBytes);

  /** net's onread callback; returning false pauses the socket until the consumer asks for more. */
  readonly onRead = (n: number, buffer: Uint8Array): boolean => {
    const read = buffer as Buffer;
    if (this.finished || this.error) return false;
    let data = read.subarray(0, n);
    if (this.length < 0) {
      this.spare.push(read); // the head is copied out of it
      const body = this.readHead(data);
      if (!body) return true;
      data = body;
    }
    data = data.subarray(0, this.length - this.received);
    this.received += data.length;
    if (data.length > 0) this.queue.push(data);
    else if (data.buffer === read.buffer) this.spare.push(read);
    this.wakeConsumer();
    return false;
  };

  /** Collects the head; once complete, checks it and returns the body bytes that came with it (a copy). */
  private readHead(data: Buffer): Buffer | undefined {
    this.head.push(Buffer.from(data));
    this.headLength += data.length;
    const all = Buffer.concat(this.head, this.headLength);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headLength > maxHeadBytes)
        this.fail(new DownloadError('downloading failed: the storage sent no valid HTTP answer'));
      return undefined;
    }
    this.head = [];
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    const headers = new Map(
      lines.slice(1).map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
      }),
    );
    const length = headers.get('content-length');
    const range = this.range;
    if (!status) this.fail(new DownloadError('downloading failed: the storage sent no valid HTTP answer'));
    else if (status !== (range ? 206 : 200))
      this.fail(new DownloadError(`the storage answered HTTP ${status} to a download`, status));
    else if (headers.has('transfer-encoding') || !length || !/^\d+$/.test(length))
      this.fail(new DownloadError('downloading failed: the storage answered without a Content-Length'));
    // A shorter answer from the start asked, ending where the object ends: the object is shorter than
    // the range (a pack cut short), which no retry mends. Told as 416, as a range starting past it is.
    else if (range && shortObject(headers.get('content-range'), range))
      this.fail(
        new DownloadError(
          `the object ends before the range asked (${headers.get('content-range')}, asked up to ${range.end})`,
          416,
        ),
      );
    // Other bytes than asked for would be read as the blobs wanted, and only fail authentication.
    else if (
      range &&
      (Number(length) !== range.end - range.start ||
        !headers.get('content-range')?.startsWith(`bytes ${range.start}-${range.end - 1}/`))
    )
      this.fail(new DownloadError('downloading failed: the storage answered another range than asked'));
    else {
      this.length = Number(length);
      this.headIn.resolve();
      return all.subarray(end + 4);
    }
    return undefined;
  }

  private fail(err: Error): void {
    if (this.finished || this.error) return;
    this.error = err;
    this.queue.length = 0;
    this.headIn.reject(err);
    this.socket.destroy();
    this.wakeConsumer();
  }

  private wakeConsumer(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async next(): Promise<IteratorResult<Buffer>> {
    // The consumer is past the chunk it had: its read buffer is free again.
    if (this.held?.length && this.held.buffer.byteLength === readBytes)
      this.spare.push(Buffer.from(this.held.buffer));
    this.held = undefined;
    for (;;) {
      if (this.error) throw this.error;
      const chunk = this.queue.shift();
      if (chunk) return { value: (this.held = chunk), done: false };
      if (this.received === this.length) {
        this.finish();
        return { value: undefined, done: true };
      }
      this.socket.resume();
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  private finish(): void {
    this.finished = true;
    this.socket.destroy();
  }

  async body(): Promise<DownloadBody> {
    await this.headPromise;
    const iterator: AsyncIterator<Buffer> = {
      next: () => this.next(),
      return: async () => {
        this.finish();
        return { value: undefined, done: true };
      },
    };
    return { length: this.length, [Symbol.asyncIterator]: () => iterator };
  }
}

/** A small object (a manifest) whole. */
export async function downloadSmall(target: StorageUrl, limitBytes = 64 << 20): Promise<Buffer> {
  const body = await download(target);
  if (body.length > limitBytes) {
    await body[Symbol.asyncIterator]().return?.();
    throw new DownloadError(`the object is larger than the ${limitBytes} bytes expected`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * Bytes [start, end) of an object, whole (a few blobs of a pack): at the start of `into` when given,
 * a buffer the caller reuses from one range to the next rather than a fresh one each.
 */
export async function downloadRange(
  target: StorageUrl,
  range: ByteRange,
  signal?: AbortSignal,
  pace: (body: AsyncIterable<Buffer>) => AsyncIterable<Buffer> = (body) => body,
  into?: Buffer,
): Promise<Buffer> {
  const size = range.end - range.start;
  if (into && into.length < size) throw new RangeError('downloadRange: the range is larger than `into`');
  const out = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of pace(await download(target, signal, range))) at += chunk.copy(out, at);
  // What arrived: a short body is the caller's to name (a pack shorter than its index says).
  return out.subarray(0, at);
}

/** A download's chunks as they come, telling `onBytes` the bytes so far every 8 MiB (progress, heartbeats). */
export async function* counted(
  body: AsyncIterable<Buffer>,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Buffer> {
  let bytes = 0;
  let toldAt = 0;
  for await (const data of body) {
    bytes += data.length;
    if (bytes - toldAt >= 8 << 20) {
      toldAt = bytes;
      onBytes(bytes);
    }
    yield data;
  }
  onBytes(bytes);
}

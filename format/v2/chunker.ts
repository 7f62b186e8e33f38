import { createHash } from 'node:crypto';

// Content-defined chunking, FastCDC with normalized chunking (Xia et al., 2016/2020): a cut depends
// only on the bytes just before it, so an insertion moves the cuts near it and no others, and the
// chunks after it are found again. Every writer must cut exactly alike, or the same file chunked by
// two agents would not deduplicate: the rule is docs/FORMAT.md's ("Chunking"), byte for byte.

export interface ChunkParams {
  min: number;
  avg: number;
  max: number;
}

/** The format's parameters; bench/chunking.ts measures why 1 MiB (docs/FORMAT.md). */
export const chunkParams: ChunkParams = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };

/** A chunk's plaintext never exceeds this in any version-2 object, whatever parameters made it. */
export const maxChunkBytes = 16 * 1024 * 1024;

let table: Int32Array | undefined;

/**
 * gear[b] = the first 4 bytes, big-endian, of SHA-256("strackt-gear-v1" || b): a table anyone can
 * rebuild from one line, instead of 256 numbers to copy without a typo. Made at first use: an agent
 * that never chunks does not hash 256 strings at start.
 */
export function gear(): Int32Array {
  return (table ??= Int32Array.from({ length: 256 }, (_, b) =>
    createHash('sha256')
      .update(Buffer.concat([Buffer.from('strackt-gear-v1', 'ascii'), Buffer.of(b)]))
      .digest()
      .readInt32BE(0),
  ));
}

/** The top `bits` bits of a 32-bit word: the hash's high bits depend on the most bytes (up to 32). */
const topBits = (bits: number) => (~0 << (32 - bits)) | 0;

function masks(avg: number): { small: number; large: number } {
  const bits = Math.log2(avg);
  if (!Number.isInteger(bits)) throw new RangeError('the average chunk size must be a power of two');
  // Normalization level 2: harder to cut before the average, easier after, so sizes bunch around it.
  return { small: topBits(bits + 2), large: topBits(bits - 2) };
}

/**
 * The length of the chunk starting at data[start], given the bytes up to data[end]: all of them if
 * they are no more than params.max and the input ends there, so call it with at least max bytes
 * while more input follows. Hot loop: 32-bit ints and typed arrays only.
 */
export function cutPoint(data: Uint8Array, start: number, end: number, params = chunkParams): number {
  const n = end - start;
  if (n <= params.min) return n;
  const { small, large } = masks(params.avg);
  const limit = Math.min(n, params.max);
  const normal = start + Math.min(params.avg, limit);
  const stop = start + limit;
  const g = gear();
  let h = 0;
  let i = start + params.min;
  // Four bytes a round: the loop's own cost, paid once for four, was half the time (measured).
  for (; i + 4 <= normal; i += 4) {
    if (((h = ((h << 1) + g[data[i]!]!) | 0) & small) === 0) return i + 1 - start;
    if (((h = ((h << 1) + g[data[i + 1]!]!) | 0) & small) === 0) return i + 2 - start;
    if (((h = ((h << 1) + g[data[i + 2]!]!) | 0) & small) === 0) return i + 3 - start;
    if (((h = ((h << 1) + g[data[i + 3]!]!) | 0) & small) === 0) return i + 4 - start;
  }
  for (; i < normal; i++) if (((h = ((h << 1) + g[data[i]!]!) | 0) & small) === 0) return i + 1 - start;
  for (; i + 4 <= stop; i += 4) {
    if (((h = ((h << 1) + g[data[i]!]!) | 0) & large) === 0) return i + 1 - start;
    if (((h = ((h << 1) + g[data[i + 1]!]!) | 0) & large) === 0) return i + 2 - start;
    if (((h = ((h << 1) + g[data[i + 2]!]!) | 0) & large) === 0) return i + 3 - start;
    if (((h = ((h << 1) + g[data[i + 3]!]!) | 0) & large) === 0) return i + 4 - start;
  }
  for (; i < stop; i++) if (((h = ((h << 1) + g[data[i]!]!) | 0) & large) === 0) return i + 1 - start;
  return limit;
}

/**
 * Cuts files into chunks, one file at a time, with one buffer for all of them: most files are
 * small, and 16 MiB of fresh memory per file would cost more than chunking it.
 */
export class Chunker {
  // Less than max bytes wait between cuts, so compacting them to the front always frees max bytes.
  private readonly buf: Buffer;

  constructor(readonly params = chunkParams) {
    this.buf = Buffer.allocUnsafe(2 * params.max);
  }

  /**
   * The chunks of one file's bytes, in order. Each is a view into the shared buffer, valid until
   * the next one is asked for (hash, compress and seal it first); run one file at a time.
   */
  async *chunksOf(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const { buf, params } = this;
    let start = 0;
    let end = 0;
    const cutAll = function* (final: boolean) {
      while (end - start >= params.max || (final && end > start)) {
        const n = cutPoint(buf, start, end, params);
        yield buf.subarray(start, start + n);
        start += n;
      }
    };
    for await (const input of source) {
      for (let offset = 0; offset < input.length;) {
        if (buf.length - end < params.max && start > 0) {
          buf.copy(buf, 0, start, end);
          end -= start;
          start = 0;
        }
        const k = Math.min(input.length - offset, buf.length - end);
        buf.set(input.subarray(offset, offset + k), end);
        end += k;
        offset += k;
        yield* cutAll(false);
      }
    }
    yield* cutAll(true);
  }
}

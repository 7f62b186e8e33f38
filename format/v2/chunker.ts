import { gear, masks, type ChunkParams } from './gear.ts';
import { GearScanner } from './gear-scan.ts';

// Content-defined chunking, FastCDC with normalized chunking (Xia et al., 2016/2020): a cut depends
// only on the bytes just before it, so an insertion moves the cuts near it and no others, and the
// chunks after it are found again. Every writer must cut exactly alike, or the same file chunked by
// two agents would not deduplicate: the rule is docs/FORMAT.md's ("Chunking"), byte for byte.

export type { ChunkParams } from './gear.ts';

/** The format's parameters; bench/chunking.ts measures why 1 MiB (docs/FORMAT.md). */
export const chunkParams: ChunkParams = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };

/** A chunk's plaintext never exceeds this in any version-2 object, whatever parameters made it. */
export const maxChunkBytes = 16 * 1024 * 1024;

/**
 * The length of the chunk starting at data[start], given the bytes up to data[end]: all of them if
 * they are no more than params.max and the input ends there, so call it with at least max bytes
 * while more input follows.
 */
export function cutPoint(data: Uint8Array, start: number, end: number, params = chunkParams): number {
  const n = end - start;
  if (n <= params.min) return n;
  return cutFrom(data, start, start + params.min, end, params) ?? n;
}

/**
 * The chunk at data[start] as cutPoint finds it, scanning only from data[from] (the bytes before
 * it were scanned already and held no cut): its length once the bytes up to data[end] decide it, a
 * cut found or params.max reached, else undefined (more input may still hold the cut). The hash
 * at a byte depends only on the 32 before it (each step shifts the older ones out of the 32-bit
 * word), so 32 bytes re-hashed resume the scan exactly. Hot loop: 32-bit ints and typed arrays only.
 */
function cutFrom(
  data: Uint8Array,
  start: number,
  from: number,
  end: number,
  params = chunkParams,
): number | undefined {
  const { small, large } = masks(params.avg);
  const stop = Math.min(end, start + params.max);
  const normal = Math.min(start + params.avg, stop);
  const g = gear();
  let i = Math.max(from, start + params.min);
  let h = 0;
  for (let j = Math.max(start + params.min, i - 32); j < i; j++) h = ((h << 1) + g[data[j]!]!) | 0;
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
  return stop === start + params.max ? params.max : undefined;
}

/**
 * Room the chunker keeps for what it is given: the capture reads 1 MiB at a time. When less is left,
 * the bytes since the last cut (less than max) move to the front: some 0.5 MiB every 8 MiB read.
 */
const readRoom = 2 * 1024 * 1024;

/**
 * Cuts files into chunks, one file at a time, with one buffer for all of them: most files are
 * small, and 10 MiB of fresh memory per file would cost more than chunking it.
 */
export class Chunker {
  // Less than max bytes wait between cuts, so compacting them to the front always frees more than the
  // room a read takes: max bytes and that room is enough, where twice max held 6 MiB more than used.
  private readonly scanner: GearScanner;

  constructor(readonly params = chunkParams) {
    this.scanner = new GearScanner(params.max + readRoom);
  }

  /**
   * The chunks of one file's bytes, in order. Each is a view into the shared buffer, valid until
   * the next one is asked for (hash, compress and seal it first); run one file at a time.
   */
  async *chunksOf(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const { scanner, params } = this;
    const { buf } = scanner;
    let start = 0;
    let end = 0;
    /** Where the scan for the chunk at `start` goes on: the bytes before held no cut. */
    let scanned = 0;
    // A chunk is cut as soon as its cut is in the buffer, not once max bytes wait behind it: only
    // the rest of the last read then moves to the front, where waiting for max bytes moved up to
    // max - 1 of them for every read (seven times the file's bytes copied, measured).
    const cuts = function* (final: boolean) {
      while (end > start) {
        let n = scanner.cutFrom(start, scanned, end, params);
        if (n === undefined) {
          if (!final) {
            scanned = end;
            return;
          }
          n = end - start;
        }
        yield buf.subarray(start, start + n);
        start += n;
        scanned = start;
      }
    };
    for await (const input of source) {
      for (let offset = 0; offset < input.length;) {
        if (buf.length - end < readRoom && start > 0) {
          buf.copy(buf, 0, start, end);
          end -= start;
          scanned -= start;
          start = 0;
        }
        const k = Math.min(input.length - offset, buf.length - end);
        buf.set(input.subarray(offset, offset + k), end);
        end += k;
        offset += k;
        yield* cuts(false);
      }
    }
    yield* cuts(true);
  }
}

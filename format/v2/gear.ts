import { createHash } from 'node:crypto';

// The gear hash's table and masks (docs/FORMAT.md, "Chunking"), shared by the chunker's reference scan
// (chunker.ts) and its fast one (gear-scan.ts).

export interface ChunkParams {
  min: number;
  avg: number;
  max: number;
}

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

export function masks(avg: number): { small: number; large: number } {
  const bits = Math.log2(avg);
  if (!Number.isInteger(bits)) throw new RangeError('the average chunk size must be a power of two');
  // Normalization level 2: harder to cut before the average, easier after, so sizes bunch around it.
  return { small: topBits(bits + 2), large: topBits(bits - 2) };
}

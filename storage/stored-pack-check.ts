import { DomainError } from '../common/errors.ts';
import { maxPackBlobs } from '../common/pack-upload-limits.ts';
import { blobOverhead } from '../format/v2/blob.ts';
import { maxChunkBytes } from '../format/v2/chunker.ts';
import { FormatV2Error } from '../format/v2/errors.ts';
import {
  indexOverhead,
  packTargetBytes,
  preambleBytes,
  tailBytesOf,
  trailerBytes,
  type PackEntry,
} from '../format/v2/pack-layout.ts';
import { openPackIndex } from '../format/v2/pack-reader.ts';
import type { SnapshotStore } from './snapshot-store.ts';

// docs/FORMAT.md ("Pack"): an index is a 4-byte count, then per blob its chunk id, offset, length and
// plaintext length.
const indexEntryBytes = 44;

const sealedIndexBytes = (blobs: number) => indexOverhead + 4 + blobs * indexEntryBytes;

/** A writer starts no blob once a pack reaches its target size: only the last blob and the index overshoot it. */
export const maxPackBytes =
  packTargetBytes + blobOverhead + maxChunkBytes + sealedIndexBytes(maxPackBlobs) + trailerBytes;

/** What an agent says it stored: the object's size and its index, entry by entry. */
export interface PackReport {
  sizeBytes: number;
  entries: PackEntry[];
}

const refused = (code: string, message: string, field?: string) =>
  new DomainError('invalid', code, message, field);

const sameEntry = (a: PackEntry, b: PackEntry | undefined) =>
  !!b && a.id.equals(b.id) && a.offset === b.offset && a.length === b.length && a.rawLength === b.rawLength;

/**
 * Checks an agent's report of a pack against the object the storage holds: its size, and its sealed
 * index, read with two ranged reads (the preamble and the tail, 44 bytes a blob), never the blobs, and
 * opened with the team secret key. The agent may be hostile: an index it made up fails to open, and
 * one that opens must list exactly the reported entries, in order.
 */
export async function checkStoredPack(
  store: SnapshotStore,
  key: string,
  report: PackReport,
  secretKey: Buffer,
): Promise<void> {
  const size = await store.size(key);
  if (size === undefined)
    throw refused('pack_missing', 'the storage holds no object for this pack: upload it before reporting it');
  if (size !== report.sizeBytes)
    throw refused(
      'pack_size_mismatch',
      `the storage holds ${size} bytes for this pack, not ${report.sizeBytes}`,
      'sizeBytes',
    );
  // The tail the reported entries make: read just that, so a lying trailer costs no larger read.
  const tailLength = sealedIndexBytes(report.entries.length) + trailerBytes;
  const differs = refused(
    'pack_index_mismatch',
    'the pack’s index does not hold the reported number of entries',
    'entries',
  );
  if (preambleBytes + tailLength > size) throw differs;
  const preamble = await store.readRange(key, 0, preambleBytes);
  const tail = await store.readRange(key, size - tailLength, tailLength);
  if (!preamble || !tail) throw refused('pack_missing', 'the pack’s object went away while it was checked');
  let entries: PackEntry[];
  try {
    if (tailBytesOf(tail) !== tailLength) throw differs;
    const index = openPackIndex(preamble, tail, size, { secretKey });
    index.dataKey.fill(0);
    entries = index.entries;
  } catch (err) {
    if (err instanceof FormatV2Error)
      throw refused('pack_unreadable', `the stored pack cannot be read: ${err.message}`);
    throw err;
  }
  const at = entries.findIndex((e, k) => !sameEntry(e, report.entries[k]));
  if (at >= 0)
    throw refused('pack_index_mismatch', `entry ${at} differs from the pack’s sealed index`, `entries.${at}`);
}

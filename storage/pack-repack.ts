import type { PackEntry } from '../format/v2/pack-layout.ts';
import { PackWriter } from '../format/v2/pack-writer.ts';
import { openedBlobs, type BlobCopy } from './opened-blobs.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface RepackedPack {
  bytes: Buffer;
  entries: PackEntry[];
  /**
   * Copies that did not open (opened-blobs.ts), left out: their packs then stay. Not marked bad here:
   * a pack sealed with a key the team has since replaced is unreadable, not damaged; a verification
   * decides that.
   */
  damaged: BlobCopy[];
}

/**
 * The live blobs of mostly dead packs, for garbage collection, in one new pack under a data key of
 * its own: each opened and checked against its id by the control plane (which holds the team key),
 * then sealed again. What it reads and holds is what the caller hands it: some MiB.
 */
export async function repackBlobs(
  store: SnapshotStore,
  team: { keyId: Buffer; publicKey: Buffer; secretKey: Buffer },
  dedupKey: Buffer,
  blobs: BlobCopy[],
): Promise<RepackedPack> {
  const parts: Buffer[] = [];
  // The writer's bytes are valid until its next add: copied as they come.
  const writer = new PackWriter(team.publicKey, (bytes) => parts.push(Buffer.from(bytes)));
  const damaged: BlobCopy[] = [];
  // A chunk may sit in several of the packs (two backups stored it at once, or a healed copy): one
  // copy goes into the new pack, whose index holds each chunk once.
  const added = new Set<string>();
  for await (const [blob, chunk] of openedBlobs(store, team, dedupKey, blobs)) {
    const id = blob.chunkId.toString('hex');
    if (!chunk) damaged.push(blob);
    else if (!added.has(id)) {
      writer.add(blob.chunkId, chunk);
      added.add(id);
    }
  }
  if (writer.count === 0) return { bytes: Buffer.alloc(0), entries: [], damaged };
  const entries = writer.finish();
  return { bytes: Buffer.concat(parts), entries, damaged };
}

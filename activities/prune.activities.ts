import type { Db } from '../db/database.ts';
import {
  deletePackRows,
  garbage,
  liveBlobsOf,
  markPacksDeleting,
  packsFreeOfReaders,
  type PackToGo,
} from '../db/chunk-gc.data.ts';
import { packStored, startPack } from '../db/chunk-index.data.ts';
import { getTeamPublicKey, openTeamSecretKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { dedupKeyOf } from '../format/v2/chunk-id.ts';
import { newPackId, packObjectKey, packTargetBytes } from '../format/v2/pack-layout.ts';
import { repackBlobs } from '../storage/pack-repack.ts';
import { choosePrune, markDeleted } from '../db/prune.data.ts';
import { getSnapshotById, packPoolsOf } from '../db/snapshots.data.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { refuse } from './reseal-data-key.ts';

/**
 * Live bytes one collection copies at most (a few new packs): well inside the activity's timeout; the
 * next collection goes on where it stopped.
 */
const repackBytesPerCollection = 4 * packTargetBytes;

/** Retention's side effects: choosing by the rule, then objects and rows going together. */
export function createPruneActivities({ db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf }) {
  /**
   * Marks deleting those of packs that may go (db/chunk-gc.data.ts), and answers them; removes the
   * objects, then the rows, of those no running restore or verification may still read (the rest
   * stay deleting, held: a later collection removes them). The store is opened after the marking:
   * what it is opened with is the destination as it is then.
   */
  async function deletePacks(
    teamId: string,
    destinationId: string,
    packs: PackToGo[],
  ): Promise<{ marked: string[]; held: number }> {
    const marked = await markPacksDeleting(
      db,
      destinationId,
      packs.map((p) => p.id),
    );
    const free = await packsFreeOfReaders(db, destinationId, marked);
    if (free.length) {
      const store = await storeOf(teamId, destinationId);
      const keys = new Map(packs.map((p) => [p.id, p.objectKey]));
      for (const id of free) await store.remove(keys.get(id)!);
      await deletePackRows(db, free);
    }
    return { marked, held: marked.length - free.length };
  }

  /**
   * Packs mostly dead, their live blobs copied into new packs (checked, so the copies count as
   * verified), then deleted. Those whose live chunks already have verified copies elsewhere (a
   * collection cut short after its copy was stored) go without another copy. A crash before a new
   * pack is recorded stored leaves an upload for a later collection; after, packs whose copies exist.
   */
  async function repack(
    teamId: string,
    destinationId: string,
    packs: (PackToGo & { liveBytes: number })[],
  ): Promise<{ repacked: number; held: number }> {
    const freed = await deletePacks(teamId, destinationId, packs);
    const rest = packs.filter((p) => !freed.marked.includes(p.id));
    let repacked = freed.marked.length;
    let held = freed.held;
    if (!rest.length) return { repacked, held };
    const team = await getTeamPublicKey(db, teamId);
    if (!team) return { repacked, held };
    const store = await storeOf(teamId, destinationId);
    const secretKey = await openTeamSecretKey(db, vault, teamId);
    const dedupKey = dedupKeyOf(secretKey);
    try {
      let budget = repackBytesPerCollection;
      while (rest.length && budget > 0) {
        // Packs taken in turn until their live bytes fill a new pack.
        const group: typeof rest = [];
        let bytes = 0;
        while (rest.length && bytes < packTargetBytes) {
          const next = rest.shift()!;
          group.push(next);
          bytes += next.liveBytes;
        }
        budget -= bytes;
        const blobs = await liveBlobsOf(
          db,
          destinationId,
          group.map((p) => p.id),
        );
        const pack = await repackBlobs(store, { ...team, secretKey }, dedupKey, blobs);
        if (pack.entries.length) {
          const objectKey = packObjectKey(store.prefix, teamId, newPackId());
          const row = await startPack(db, { objectKey, teamId, destinationId });
          await store.put(objectKey, pack.bytes);
          await packStored(db, row.id, {
            sizeBytes: pack.bytes.length,
            entries: pack.entries.map(({ id, ...place }) => ({ chunkId: id, ...place })),
            verified: true,
          });
        }
        const gone = await deletePacks(teamId, destinationId, group);
        repacked += gone.marked.length;
        held += gone.held;
      }
    } finally {
      secretKey.fill(0);
      dedupKey.fill(0);
    }
    return { repacked, held };
  }

  return {
    choosePrune: ({ scheduleId }: { scheduleId: string }) => choosePrune(db, scheduleId),

    /**
     * Deletes a `deleting` snapshot's objects, then marks it deleted. Objects first: a crash in between
     * leaves a `deleting` row that the next prune finishes, never a listed row without objects. Done
     * again, it deletes what is already gone, which is no error (on a receiver, with the prune token).
     */
    async deleteSnapshotObjects({ snapshotId }: { snapshotId: string }): Promise<void> {
      const snapshot = await getSnapshotById(db, snapshotId);
      if (snapshot.status === 'deleted') return;
      if (snapshot.status !== 'deleting')
        throw refuse(`snapshot ${snapshotId} is ${snapshot.status}, not chosen for deletion`, 'NotChosen');
      const store = await storeOf(snapshot.team_id, snapshot.destination_id);
      await store.remove(snapshot.data_key);
      await store.remove(snapshot.manifest_key);
      await markDeleted(db, snapshotId);
    },

    /** The pack pools (team and destination) format-2 snapshots among these used: where to collect. */
    packPoolsOf: ({ snapshotIds }: { snapshotIds: string[] }) => packPoolsOf(db, snapshotIds),

    /**
     * Garbage collection of a destination's packs: those holding no chunk a kept snapshot or a backup
     * in flight needs are marked deleting (decided under the index's lock, db/chunk-gc.data.ts), their
     * objects removed, then their rows. A crash anywhere leaves packs marked deleting, which the next
     * collection removes; a chunk a backup in flight has claimed is never among them. Then packs
     * mostly dead are repacked, a bounded amount per collection.
     */
    async collectGarbage({
      teamId,
      destinationId,
    }: {
      teamId: string;
      destinationId: string;
    }): Promise<{ packsDeleted: number; packsRepacked: number; packsHeld: number }> {
      const found = await garbage(db, destinationId);
      const deleted = await deletePacks(teamId, destinationId, found.packsToDelete);
      const { repacked, held } = await repack(teamId, destinationId, found.packsToRepack);
      // Held: marked deleting, their objects kept for a restore or verification that may read them.
      return {
        packsDeleted: deleted.marked.length - deleted.held,
        packsRepacked: repacked,
        packsHeld: deleted.held + held,
      };
    },
  };
}

export type PruneActivities = ReturnType<typeof createPruneActivities>;

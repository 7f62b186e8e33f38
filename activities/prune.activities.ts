import type { Db } from '../db/database.ts';
import { deletePackRows, garbage, markPacksDeleting } from '../db/chunk-gc.data.ts';
import { choosePrune, markDeleted } from '../db/prune.data.ts';
import { getSnapshotById, packPoolsOf } from '../db/snapshots.data.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { refuse } from './reseal-data-key.ts';

/** Retention's side effects: choosing by the rule, then objects and rows going together. */
export function createPruneActivities({ db, storeOf }: { db: Db; storeOf: StoreOf }) {
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
     * collection removes; a chunk a backup in flight has claimed is never among them. Packs mostly
     * dead are only counted here: repacking them is not built yet.
     */
    async collectGarbage({
      teamId,
      destinationId,
    }: {
      teamId: string;
      destinationId: string;
    }): Promise<{ packsDeleted: number; packsToRepack: number }> {
      const found = await garbage(db, destinationId);
      const going = await markPacksDeleting(
        db,
        destinationId,
        found.packsToDelete.map((p) => p.id),
      );
      const keys = new Map(found.packsToDelete.map((p) => [p.id, p.objectKey]));
      const store = await storeOf(teamId, destinationId);
      for (const id of going) await store.remove(keys.get(id)!);
      await deletePackRows(db, going);
      return { packsDeleted: going.length, packsToRepack: found.packsToRepack.length };
    },
  };
}

export type PruneActivities = ReturnType<typeof createPruneActivities>;

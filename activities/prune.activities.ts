import type { Db } from '../db/database.ts';
import { choosePrune, markDeleted } from '../db/prune.data.ts';
import { getSnapshotById } from '../db/snapshots.data.ts';
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
  };
}

export type PruneActivities = ReturnType<typeof createPruneActivities>;

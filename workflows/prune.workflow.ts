import { patched, proxyActivities } from '@temporalio/workflow';
import type { PruneActivities } from '../activities/prune.activities.ts';
import type { PruneInput, PruneResult } from '../common/workflow-contracts.ts';

const control = proxyActivities<PruneActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', maximumAttempts: 20 },
});

/**
 * Deletes snapshots, objects and rows together: first the choice is marked in the database (never
 * offered again), then each snapshot's objects go and its row is marked deleted, then the packs that
 * only deleted format-2 snapshots used (collectGarbage). Safe to run twice or at once, and beside a
 * backup (see choosePrune, and markPacksDeleting for the packs).
 */
// Workflow names live in histories and schedules: never rename this function.
export async function pruneSnapshots(input: PruneInput): Promise<PruneResult> {
  const ids = [...(input.snapshotIds ?? [])];
  if (input.scheduleId) ids.push(...(await control.choosePrune({ scheduleId: input.scheduleId })));
  const deleted = [...new Set(ids)];
  for (const snapshotId of deleted) await control.deleteSnapshotObjects({ snapshotId });
  // Format 2's chunks go only once no snapshot uses them: the packs these referenced alone. Patched:
  // prunes that started before it replay without it.
  if (patched('collect-garbage-after-prune'))
    for (const pool of await control.packPoolsOf({ snapshotIds: deleted }))
      await control.collectGarbage(pool);
  return { deleted };
}

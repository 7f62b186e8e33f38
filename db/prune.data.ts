import { applyRetention, type RetainedSnapshot } from '../common/retention.ts';
import { activeStatuses } from '../common/operations.ts';
import type { Db } from './database.ts';
import type { Snapshot } from './tables/snapshot.table.ts';

/** Snapshots a restore or verification is reading now: never pruned under it. */
async function inUse(db: Db, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await db
    .selectFrom('operations')
    .leftJoin('restores', 'restores.operation_id', 'operations.id')
    .leftJoin('verifications', 'verifications.operation_id', 'operations.id')
    .select(['restores.snapshot_id as restoring', 'verifications.snapshot_id as verifying'])
    .where('operations.status', 'in', activeStatuses)
    .where((eb) => eb.or([eb('restores.snapshot_id', 'in', ids), eb('verifications.snapshot_id', 'in', ids)]))
    .execute();
  return new Set(rows.flatMap((r) => [r.restoring, r.verifying]).filter((id): id is string => !!id));
}

/** A schedule's snapshots still listed or being deleted; locked when a prune is choosing among them. */
function scheduleSnapshotRows(db: Db, scheduleId: string, lock: boolean) {
  const query = db
    .selectFrom('snapshots')
    .innerJoin('schedule_runs', 'schedule_runs.snapshot_id', 'snapshots.id')
    .select([
      'snapshots.id',
      'snapshots.status',
      'snapshots.created_at',
      'snapshots.pinned',
      'snapshots.verification',
    ])
    .where('schedule_runs.schedule_id', '=', scheduleId)
    .where('snapshots.status', 'in', ['complete', 'deleting']);
  return (lock ? query.forUpdate() : query).execute();
}

/**
 * What a retention rule sees of them: the complete ones, as taken to the millisecond (several can be
 * taken within one second, and "the last N" must still know which is newest). A snapshot that failed
 * verification takes no good one's place, and stays for its owner to see: neither counted nor deleted.
 */
function seenByRetention(rows: Awaited<ReturnType<typeof scheduleSnapshotRows>>): RetainedSnapshot[] {
  return rows
    .filter((r) => r.status === 'complete' && (r.verification === null || r.verification === 'ok'))
    .map((r) => ({ id: r.id, takenAt: r.created_at.getTime() / 1000, pinned: r.pinned }));
}

/** The snapshots a schedule's rule judges, as a prune would now: what the retention preview shows. */
export async function snapshotsForRetention(db: Db, scheduleId: string): Promise<RetainedSnapshot[]> {
  return seenByRetention(await scheduleSnapshotRows(db, scheduleId, false));
}

/**
 * Chooses what a schedule's retention rule no longer keeps and marks it `deleting` (from then on it is
 * never listed or offered) in one transaction; answers those and any its earlier prunes left
 * `deleting`, whose objects are to go. The schedule's row is locked, so two prunes of one schedule take
 * turns and the second finds the first's choice. A backup finishing meanwhile only adds a newer
 * snapshot, which can make the rule keep fewer older ones, never more: choosing without it is safe.
 */
export async function choosePrune(db: Db, scheduleId: string): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const schedule = await trx
      .selectFrom('backup_schedules')
      .selectAll()
      .where('id', '=', scheduleId)
      .forUpdate()
      .executeTakeFirst();
    if (!schedule) return [];
    const rows = await scheduleSnapshotRows(trx, scheduleId, true);
    const leftOver = rows.filter((r) => r.status === 'deleting').map((r) => r.id);
    if (!schedule.retention) return leftOver;
    const judged = seenByRetention(rows);
    const decisions = applyRetention(judged, schedule.retention, schedule.timezone);
    const busy = await inUse(
      trx,
      judged.map((r) => r.id),
    );
    const chosen = decisions.filter((d) => !d.keep && !busy.has(d.id)).map((d) => d.id);
    if (chosen.length)
      await trx.updateTable('snapshots').set({ status: 'deleting' }).where('id', 'in', chosen).execute();
    return [...leftOver, ...chosen];
  });
}

/**
 * Marks one snapshot of the team's `deleting` for a deletion asked by hand: refused (answered as is)
 * when pinned, being restored or verified, or not complete.
 */
export async function markForDeletion(
  db: Db,
  teamId: string,
  id: string,
): Promise<{ snapshot?: Snapshot; refusal?: 'pinned' | 'in_use' | 'not_found' }> {
  return db.transaction().execute(async (trx) => {
    const snapshot = await trx
      .selectFrom('snapshots')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('id', '=', id)
      .where('status', 'in', ['complete', 'deleting'])
      .forUpdate()
      .executeTakeFirst();
    if (!snapshot) return { refusal: 'not_found' };
    if (snapshot.pinned) return { refusal: 'pinned' };
    if ((await inUse(trx, [id])).size) return { refusal: 'in_use' };
    const marked = await trx
      .updateTable('snapshots')
      .set({ status: 'deleting' })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return { snapshot: marked };
  });
}

/** After its objects are gone: the row stays, as `deleted`, so restores that used it still name it. */
export async function markDeleted(db: Db, id: string): Promise<void> {
  await db
    .updateTable('snapshots')
    .set({ status: 'deleted', deleted_at: new Date() })
    .where('id', '=', id)
    .where('status', '=', 'deleting')
    .execute();
}

import { activeStatuses } from '../common/operations.ts';
import type { Db } from './database.ts';
import type { Restore } from './tables/restore.table.ts';

export interface NewRestore {
  operationId: string;
  teamId: string;
  environmentId: string;
  snapshotId: string;
  targetServerId: string;
  previousServerId: string | null;
  sealedDataKey: string;
}

/** Retried, it replaces what an earlier attempt wrote: the key is re-sealed afresh each time. */
export async function saveRestore(db: Db, r: NewRestore): Promise<void> {
  const row = {
    operation_id: r.operationId,
    team_id: r.teamId,
    environment_id: r.environmentId,
    snapshot_id: r.snapshotId,
    target_server_id: r.targetServerId,
    previous_server_id: r.previousServerId,
    sealed_data_key: r.sealedDataKey,
    downtime_ms: null,
  };
  await db
    .insertInto('restores')
    .values(row)
    .onConflict((oc) => oc.column('operation_id').doUpdateSet({ sealed_data_key: r.sealedDataKey }))
    .execute();
}

export async function getRestore(db: Db, operationId: string): Promise<Restore | undefined> {
  return db.selectFrom('restores').selectAll().where('operation_id', '=', operationId).executeTakeFirst();
}

/** For an agent: a restore onto its own server that is running now, and nothing else. */
export async function activeRestoreForServer(
  db: Db,
  serverId: string,
  operationId: string,
): Promise<Restore | undefined> {
  return db
    .selectFrom('restores')
    .innerJoin('operations', 'operations.id', 'restores.operation_id')
    .selectAll('restores')
    .where('restores.operation_id', '=', operationId)
    .where('restores.target_server_id', '=', serverId)
    .where('operations.status', 'in', activeStatuses)
    .executeTakeFirst();
}

/**
 * The end of a restore, whatever the outcome: the sealed key is dropped (no later use for it), the
 * downtime kept, and on success the environment now lives on the target.
 */
export async function closeRestore(
  db: Db,
  operationId: string,
  outcome: { committed: boolean; downtimeMs: number | null },
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const restore = await tx
      .updateTable('restores')
      .set({ sealed_data_key: null, downtime_ms: outcome.downtimeMs })
      .where('operation_id', '=', operationId)
      .returningAll()
      .executeTakeFirst();
    if (restore && outcome.committed) {
      await tx
        .updateTable('environments')
        .set({ server_id: restore.target_server_id, updated_at: new Date() })
        .where('id', '=', restore.environment_id)
        .execute();
    }
  });
}

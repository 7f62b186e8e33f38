import { activeStatuses } from '../common/operations.ts';
import type { Db } from './database.ts';
import type { Verification } from './tables/verification.table.ts';

/** Hands the verifying server the snapshot's data key, sealed to it, for this operation only. */
export async function grantVerificationAccess(
  db: Db,
  v: { operationId: string; teamId: string; snapshotId: string; serverId: string; sealedDataKey: string },
): Promise<void> {
  await db
    .insertInto('verifications')
    .values({
      operation_id: v.operationId,
      team_id: v.teamId,
      snapshot_id: v.snapshotId,
      server_id: v.serverId,
      sealed_data_key: v.sealedDataKey,
    })
    .onConflict((oc) => oc.column('operation_id').doUpdateSet({ sealed_data_key: v.sealedDataKey }))
    .execute();
}

/**
 * The verification `operationId` of this server, while its operation runs: access to the snapshot ends
 * when the verification ends, however it ends (done, failed, cancelled), whatever is left in the row.
 */
export async function activeVerificationForServer(
  db: Db,
  serverId: string,
  operationId: string,
): Promise<Verification | undefined> {
  return db
    .selectFrom('verifications')
    .innerJoin('operations', 'operations.id', 'verifications.operation_id')
    .selectAll('verifications')
    .where('verifications.operation_id', '=', operationId)
    .where('verifications.server_id', '=', serverId)
    .where('operations.status', 'in', activeStatuses)
    .where('verifications.sealed_data_key', 'is not', null)
    .executeTakeFirst();
}

/** The sealed key has no use once the operation ends. */
export async function dropVerificationAccess(db: Db, operationId: string): Promise<void> {
  await db
    .updateTable('verifications')
    .set({ sealed_data_key: null })
    .where('operation_id', '=', operationId)
    .execute();
}

import type { VerificationOutcome, VerifyInput } from '../common/workflow-contracts.ts';
import type { Db } from '../db/database.ts';
import { getSnapshotById, recordVerified } from '../db/snapshots.data.ts';
import type { Vault } from '../db/vault.ts';
import { dropVerificationAccess, grantVerificationAccess } from '../db/verifications.data.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { refuse, resealDataKey } from './reseal-data-key.ts';
import type { Notify } from './webhook.activities.ts';
import { findServer } from '../db/servers.data.ts';

/** Control-plane side of verifying a stored snapshot, and what is recorded of it. */
interface Deps {
  db: Db;
  vault: Vault;
  storeOf: StoreOf;
  notify: Notify;
}

export function createVerifyActivities({ db, vault, storeOf, notify }: Deps) {
  return {
    /**
     * What the control plane can see without reading the snapshot: both objects are there (format 2:
     * its manifest), the data object has the size recorded, its header opens with the team key. Then
     * the data key is sealed to the verifying agent. Answers the outcome when that already decides it
     * (missing, truncated).
     */
    async prepareVerification(
      input: VerifyInput,
    ): Promise<{ sizeBytes: number; outcome?: VerificationOutcome }> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      if (snapshot.team_id !== input.teamId || snapshot.status !== 'complete')
        throw refuse(
          `snapshot ${input.snapshotId} is not a complete snapshot of this team`,
          'NoSuchSnapshot',
        );
      const server = await findServer(db, input.teamId, input.serverId);
      if (!server?.agent_public_key)
        throw refuse(`server ${input.serverId} is not an enrolled server of this team`, 'NoSuchServer');
      const store = await storeOf(snapshot.team_id, snapshot.destination_id);
      const sizeBytes = Number(snapshot.size_bytes);
      // Format 2 has no data object: its packs are checked by the agent, blob by blob.
      const [data, manifest] = await Promise.all([
        snapshot.format_version === 2 ? sizeBytes : store.size(snapshot.data_key),
        store.size(snapshot.manifest_key),
      ]);
      if (data === undefined || manifest === undefined)
        return {
          sizeBytes,
          outcome: {
            result: 'missing',
            error: `the ${data === undefined ? 'data object' : 'manifest'} is gone from the storage`,
          },
        };
      if (data !== sizeBytes)
        return {
          sizeBytes,
          outcome: {
            result: 'failed',
            error: `the data object has ${data} bytes, the snapshot had ${sizeBytes}`,
          },
        };
      let sealed: string;
      try {
        sealed = await resealDataKey({ db, vault, storeOf }, snapshot, server.agent_public_key);
      } catch (err) {
        const type = (err as { type?: string }).type;
        if (type === 'SnapshotCorrupt' || type === 'WrongKey' || type === 'SnapshotMissing')
          return {
            sizeBytes,
            outcome: {
              result: type === 'SnapshotMissing' ? 'missing' : 'failed',
              error: (err as Error).message,
            },
          };
        throw err;
      }
      await grantVerificationAccess(db, {
        operationId: input.operationId,
        teamId: input.teamId,
        snapshotId: snapshot.id,
        serverId: input.serverId,
        sealedDataKey: sealed,
      });
      return { sizeBytes };
    },

    /**
     * Records the result on the snapshot ("last verified") and drops the sealed key. A snapshot that
     * failed is no longer the default restore point, and the team's webhooks hear of it.
     */
    async recordVerification(input: VerifyInput & { outcome: VerificationOutcome }): Promise<void> {
      const { outcome } = input;
      await recordVerified(db, input.snapshotId, outcome);
      await dropVerificationAccess(db, input.operationId);
      if (outcome.result !== 'ok')
        await notify({
          teamId: input.teamId,
          event: 'snapshot.verification_failed',
          subject: input.operationId,
          payload: {
            snapshotId: input.snapshotId,
            environmentId: input.environmentId,
            operationId: input.operationId,
            result: outcome.result,
            error: outcome.error,
          },
        });
    },
  };
}

export type VerifyActivities = ReturnType<typeof createVerifyActivities>;

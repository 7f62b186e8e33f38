import type { Db } from '../db/database.ts';
import { closeRestore, saveRestore } from '../db/restores.data.ts';
import { getSnapshotById } from '../db/snapshots.data.ts';
import type { Vault } from '../db/vault.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { refuse, resealDataKey } from './reseal-data-key.ts';
import { findServer } from '../db/servers.data.ts';
import { getEnvironment } from '../db/environments.data.ts';

export interface PrepareRestoreInput {
  operationId: string;
  teamId: string;
  environmentId: string;
  /** The target server. */
  serverId: string;
  snapshotId: string;
}

export interface PreparedRestore {
  sizeBytes: number;
  /** Where the environment runs now, if not on the target and that server's agent is connected. */
  stopOnServerId: string | null;
}

interface Deps {
  db: Db;
  vault: Vault;
  storeOf: StoreOf;
  /** Whether a server's agent polls its queue now (Temporal's view of it). */
  agentConnected: (serverId: string) => Promise<boolean>;
}

/** Control-plane side of a restore: checks before anything is touched, and the data key's custody. */
export function createRestoreActivities({ db, vault, storeOf, agentConnected }: Deps) {
  return {
    /**
     * Preflight on the control plane: the snapshot is this environment's and complete, both objects
     * are in the bucket, the header is ours and the team key opens its data key. That data key is
     * then re-sealed to the target agent's own public key and kept only in Postgres for the agent to
     * collect: it never enters Temporal, and the team key never leaves this process.
     */
    async prepareRestore(input: PrepareRestoreInput): Promise<PreparedRestore> {
      const snapshot = await getSnapshotById(db, input.snapshotId).catch(() => undefined);
      if (
        !snapshot ||
        snapshot.team_id !== input.teamId ||
        snapshot.environment_id !== input.environmentId ||
        snapshot.status !== 'complete'
      ) {
        throw refuse(
          `snapshot ${input.snapshotId} is not a complete snapshot of this environment`,
          'NoSuchSnapshot',
        );
      }
      const [target, environment] = await Promise.all([
        findServer(db, input.teamId, input.serverId),
        getEnvironment(db, input.teamId, input.environmentId),
      ]);
      if (!target) throw refuse(`server ${input.serverId} is not a server of this team`, 'NoSuchServer');
      if (!target.agent_public_key) {
        throw refuse(
          `the agent of server ${target.name} has not enrolled with a key yet`,
          'AgentNotEnrolled',
        );
      }

      const resealed = await resealDataKey({ db, vault, storeOf }, snapshot, target.agent_public_key);

      const elsewhere = environment.server_id !== target.id ? environment.server_id : null;
      await saveRestore(db, {
        operationId: input.operationId,
        teamId: input.teamId,
        environmentId: input.environmentId,
        snapshotId: snapshot.id,
        targetServerId: target.id,
        previousServerId: elsewhere,
        sealedDataKey: resealed,
      });
      return {
        sizeBytes: Number(snapshot.size_bytes),
        stopOnServerId: elsewhere && (await agentConnected(elsewhere)) ? elsewhere : null,
      };
    },

    /** Ends a restore: the re-sealed key is dropped either way; committed, the environment moves to the target. */
    async closeRestore(input: {
      operationId: string;
      committed: boolean;
      downtimeMs: number | null;
    }): Promise<void> {
      await closeRestore(db, input.operationId, input);
    },
  };
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;

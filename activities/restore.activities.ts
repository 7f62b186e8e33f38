import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../db/database.ts';
import { closeRestore, saveRestore } from '../db/restores.data.ts';
import { getSnapshotById } from '../db/snapshots.data.ts';
import { getTeamPublicKey, openTeamSecretKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import {
  headerBytes,
  openDataKey,
  parseHeader,
  sealDataKey,
  SnapshotFormatError,
} from '../format/container.ts';
import { snapshotStore } from '../storage/snapshot-store-of.ts';

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
  /** Whether a server's agent polls its queue now (Temporal's view of it). */
  agentConnected: (serverId: string) => Promise<boolean>;
}

const refuse = (message: string, type: string) => ApplicationFailure.nonRetryable(message, type);

/** Control-plane side of a restore: checks before anything is touched, and the data key's custody. */
export function createRestoreActivities({ db, vault, agentConnected }: Deps) {
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
        db
          .selectFrom('servers')
          .selectAll()
          .where('id', '=', input.serverId)
          .where('team_id', '=', input.teamId)
          .executeTakeFirst(),
        db
          .selectFrom('environments')
          .selectAll()
          .where('id', '=', input.environmentId)
          .executeTakeFirstOrThrow(),
      ]);
      if (!target) throw refuse(`server ${input.serverId} is not a server of this team`, 'NoSuchServer');
      if (!target.agent_public_key) {
        throw refuse(
          `the agent of server ${target.name} has not enrolled with a key yet`,
          'AgentNotEnrolled',
        );
      }

      const store = await snapshotStore(db, vault, snapshot);
      const head =
        (await store.size(snapshot.manifest_key)) === undefined
          ? undefined
          : await store.readStart(snapshot.data_key, headerBytes);
      if (!head)
        throw refuse(
          `snapshot ${snapshot.id} is listed but its objects are gone from the storage`,
          'SnapshotMissing',
        );
      const team = await getTeamPublicKey(db, input.teamId);
      let header;
      try {
        header = parseHeader(head);
      } catch (err) {
        if (err instanceof SnapshotFormatError)
          throw refuse(`the stored snapshot: ${err.message}`, 'SnapshotCorrupt');
        throw err;
      }
      if (!team || !header.keyId.equals(team.keyId)) {
        throw refuse('the snapshot was sealed with another key than the team key', 'WrongKey');
      }
      const secretKey = await openTeamSecretKey(db, vault, input.teamId);
      const dataKey = openDataKey(head.subarray(32, 112), team.publicKey, secretKey);
      secretKey.fill(0);
      if (!dataKey)
        throw refuse(
          'the team key does not open this snapshot (its sealed key is altered)',
          'SnapshotCorrupt',
        );
      const resealed = sealDataKey(dataKey, Buffer.from(target.agent_public_key, 'hex'));
      dataKey.fill(0);

      const elsewhere = environment.server_id !== target.id ? environment.server_id : null;
      await saveRestore(db, {
        operationId: input.operationId,
        teamId: input.teamId,
        environmentId: input.environmentId,
        snapshotId: snapshot.id,
        targetServerId: target.id,
        previousServerId: elsewhere,
        sealedDataKey: resealed.toString('hex'),
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

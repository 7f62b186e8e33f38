import { ApplicationFailure, log } from '@temporalio/activity';
import type { HostTaskResult } from '../common/host-tasks.ts';
import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import {
  createSnapshot,
  getSnapshotById,
  markComplete,
  markFailed,
  openUploadIds,
  setUploadId,
  snapshotRecordOf,
} from '../db/snapshots.data.ts';
import { countSnapshotChunks } from '../db/chunk-index.data.ts';
import { getTeamPublicKey } from '../db/team-keys.data.ts';
import { accessDenied, refusedCredentialsCode, s3ErrorName } from '../storage/probe-errors.ts';
import { ReceiverError } from '../storage/receiver-client.ts';
import type { SnapshotStore } from '../storage/snapshot-store.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { snapshotObjectKeys } from '../format/manifest.ts';
import { heartbeatWhile } from './heartbeat.ts';

export interface PrepareBackupInput {
  operationId: string;
  teamId: string;
  environmentId: string;
  serverId: string;
  destinationId: string;
}

const staleAfterMs = 24 * 3600 * 1000;

/** Refused credentials fail the run at once, saying what to fix; the next run tries again with whatever is saved then. */
const credentialsRefused = (destinationId: string) => (err: unknown) => {
  if (err instanceof ReceiverError && err.status === 401)
    throw ApplicationFailure.nonRetryable(
      `the receiver of destination ${destinationId} refused strackt's credentials (${err.code}): was it reset? Enrol it again as a new destination`,
      'StorageCredentialsRefused',
    );
  const code = refusedCredentialsCode(err);
  if (!code) throw err;
  throw ApplicationFailure.nonRetryable(
    `the bucket of destination ${destinationId} refused its credentials (${code}): update them with PATCH /destinations/${destinationId}`,
    'StorageCredentialsRefused',
  );
};

/** Control-plane side of a backup: the storage's bookkeeping, with credentials that never leave this process. */
export function createBackupActivities({
  db,
  storeOf,
  snapshotFormat,
}: {
  db: Db;
  storeOf: StoreOf;
  snapshotFormat: 1 | 2;
}) {
  /** Before each backup: uploads of this team's that no running snapshot owns and a day old are debris. */
  async function sweep(store: SnapshotStore, teamId: string): Promise<void> {
    const owned = await openUploadIds(db);
    const teamPrefix = `${[store.prefix.replace(/^\/+|\/+$/g, ''), teamId].filter(Boolean).join('/')}/`;
    await store.sweepUploads(teamPrefix, owned, staleAfterMs).catch(
      () => {}, // best effort: a sweep must never fail the backup it precedes
    );
  }

  return {
    /**
     * Creates the snapshot record and, for format 1, its multipart upload; retried, it finds the ones
     * it made before. A format-2 snapshot has no data object: its agent uploads packs and the manifest.
     */
    async prepareBackup(
      input: PrepareBackupInput,
    ): Promise<{ snapshotId: string; teamPublicKey: string; formatVersion: 1 | 2 }> {
      const key = await getTeamPublicKey(db, input.teamId);
      if (!key)
        throw ApplicationFailure.nonRetryable(
          'the team has no key yet: add a destination first',
          'NoTeamKey',
        );
      let snapshot = await snapshotRecordOf(db, input.operationId);
      let store;
      try {
        store = await storeOf(input.teamId, input.destinationId);
      } catch (err) {
        if (err instanceof DomainError)
          throw ApplicationFailure.nonRetryable(err.message, 'NoSuchDestination');
        throw err;
      }
      snapshot ??= await createSnapshot(db, {
        teamId: input.teamId,
        environmentId: input.environmentId,
        destinationId: input.destinationId,
        sourceServerId: input.serverId,
        operationId: input.operationId,
        keyId: key.keyId.toString('hex'),
        objectKeys: (id) => snapshotObjectKeys(store.prefix, input.teamId, input.environmentId, id),
        formatVersion: snapshotFormat,
      });
      await sweep(store, input.teamId);
      if (snapshot.format_version === 1 && !snapshot.upload_id) {
        const uploadId = await store
          .createUpload(snapshot.data_key)
          .catch(credentialsRefused(input.destinationId));
        await setUploadId(db, snapshot.id, uploadId);
      }
      // Format 2 asks nothing of the storage before its agent's first upload, where URLs presigned
      // with revoked keys would fail only in a retried step: one authenticated read fails it at once.
      // Of a key not there yet: AccessDenied then may only mean the keys cannot list the bucket, which
      // a backup does not need (the destination check asks for PutObject, GetObject and DeleteObject).
      if (snapshot.format_version === 2)
        await store.readRange(snapshot.manifest_key, 0, 1).catch((err: unknown) => {
          if (!accessDenied(err)) credentialsRefused(input.destinationId)(err);
        });
      return {
        snapshotId: snapshot.id,
        teamPublicKey: key.publicKey.toString('hex'),
        formatVersion: snapshot.format_version,
      };
    },

    /**
     * Lists a format-2 snapshot once the storage holds its manifest and strackt's index holds every
     * chunk reference its agent reported: garbage collection keeps exactly those, so a listed snapshot
     * never names a chunk that may be collected. Retried after it recorded, it records nothing again.
     */
    async completeDedupBackup(input: {
      snapshotId: string;
      capture: HostTaskResult<'captureDedupSnapshot'>;
    }): Promise<void> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      if (snapshot.status === 'complete') return;
      const { capture } = input;
      const store = await storeOf(snapshot.team_id, snapshot.destination_id);
      const manifestBytes = await store.size(snapshot.manifest_key);
      if (manifestBytes === undefined)
        throw ApplicationFailure.nonRetryable(
          'the storage holds no manifest for the snapshot',
          'UploadMismatch',
        );
      const referenced = await countSnapshotChunks(db, snapshot.id);
      if (referenced !== capture.chunks)
        throw ApplicationFailure.nonRetryable(
          `the agent reported ${referenced} chunk references of the ${capture.chunks} its manifest lists`,
          'UploadMismatch',
        );
      await markComplete(db, snapshot.id, {
        // What this backup added to the destination: most of what it references was stored before.
        sizeBytes: capture.figures.packedBytes + manifestBytes,
        tarBytes: capture.bytes,
        entries: capture.entries,
        dataSha256: null,
        manifestSha256: capture.manifestSha256,
        frozenMs: capture.frozenMs,
        captureMs: capture.captureMs,
        volumes: capture.volumes,
        methods: capture.methods,
      });
    },

    /**
     * Completes the upload and checks what the storage holds before the snapshot is listed. The storage
     * joins the parts meanwhile, which grows with the snapshot: it heartbeats (workflows/backup.workflow.ts).
     * Retried after it recorded the snapshot, it finds it complete and records nothing again.
     */
    async completeBackup(input: {
      snapshotId: string;
      capture: HostTaskResult<'captureSnapshot'>;
    }): Promise<void> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      if (snapshot.status === 'complete') return;
      const store = await storeOf(snapshot.team_id, snapshot.destination_id);
      const { capture } = input;
      await heartbeatWhile(() =>
        store.completeUpload(
          snapshot.data_key,
          snapshot.upload_id!,
          capture.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
          { size: capture.sizeBytes, sha256: capture.dataSha256 },
        ),
      );
      const size = await store.size(snapshot.data_key);
      if (size !== capture.sizeBytes) {
        throw ApplicationFailure.nonRetryable(
          `the stored snapshot has ${size ?? 'no'} bytes, the agent sent ${capture.sizeBytes}`,
          'UploadMismatch',
        );
      }
      if ((await store.size(snapshot.manifest_key)) === undefined)
        throw ApplicationFailure.nonRetryable(
          'the storage holds no manifest for the snapshot',
          'UploadMismatch',
        );
      await markComplete(db, snapshot.id, capture);
    },

    /** After a final failure: the snapshot is never listed, and nothing half-written stays in the storage. */
    async abortBackup(input: { snapshotId: string; error: string }): Promise<void> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      if (snapshot.status === 'complete') return;
      // The record first: even if the storage cannot be reached now, the snapshot is already not offered.
      await markFailed(db, snapshot.id, input.error);
      // Best effort: with the storage unreachable the failure must still end promptly; the next backup's
      // sweep (a receiver's own) drops what is left.
      try {
        const store = await storeOf(snapshot.team_id, snapshot.destination_id);
        if (snapshot.upload_id) await store.abortUpload(snapshot.data_key, snapshot.upload_id);
        await store.remove(snapshot.manifest_key);
      } catch (err) {
        log.warn('could not clean up after a failed backup; the next backup sweeps it', {
          snapshotId: snapshot.id,
          error: s3ErrorName(err) || (err as Error).message,
        });
      }
    },
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import type { CaptureResult } from '../agent/snapshot-capture.ts';
import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import {
  createSnapshot,
  getSnapshotById,
  markComplete,
  markFailed,
  setUploadId,
} from '../db/snapshots.data.ts';
import type { Snapshot } from '../db/tables/snapshot.table.ts';
import { getTeamPublicKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { createLogger } from '../common/log.ts';
import { refusedCredentialsCode, s3ErrorName } from '../storage/probe-errors.ts';
import { snapshotBucket } from '../storage/snapshot-bucket.ts';
import { sweepStaleUploads } from '../storage/stale-uploads.ts';
import { snapshotObjectKeys } from '../format/manifest.ts';

export interface PrepareBackupInput {
  operationId: string;
  teamId: string;
  environmentId: string;
  serverId: string;
  destinationId: string;
}

const staleAfterMs = 24 * 3600 * 1000;
const log = createLogger('backup');

/** Refused credentials fail the run at once, saying what to fix; the next run tries again with whatever is saved then. */
const credentialsRefused = (destinationId: string) => (err: unknown) => {
  const code = refusedCredentialsCode(err);
  if (!code) throw err;
  throw ApplicationFailure.nonRetryable(
    `the bucket of destination ${destinationId} refused its credentials (${code}): update them with PATCH /destinations/${destinationId}`,
    'StorageCredentialsRefused',
  );
};

/** Control-plane side of a backup: the bucket's bookkeeping, with credentials that never leave this process. */
export function createBackupActivities({ db, vault }: { db: Db; vault: Vault }) {
  const bucketOf = (snapshot: Pick<Snapshot, 'team_id' | 'destination_id'>) =>
    snapshotBucket(db, vault, snapshot);

  /** Before each backup: uploads of this team's that no running snapshot owns and a day old are debris. */
  async function sweep(
    bucket: { s3: S3Client; bucket: string; prefix: string },
    teamId: string,
  ): Promise<void> {
    const owned = await db
      .selectFrom('snapshots')
      .select('upload_id')
      .where('status', '=', 'uploading')
      .execute();
    const teamPrefix = `${[bucket.prefix.replace(/^\/+|\/+$/g, ''), teamId].filter(Boolean).join('/')}/`;
    await sweepStaleUploads(
      bucket.s3,
      bucket.bucket,
      teamPrefix,
      new Set(owned.map((o) => o.upload_id!)),
      staleAfterMs,
    ).catch(
      () => {}, // best effort: a sweep must never fail the backup it precedes
    );
  }

  return {
    /** Creates the snapshot record and its multipart upload; retried, it finds the ones it made before. */
    async prepareBackup(input: PrepareBackupInput): Promise<{ snapshotId: string; teamPublicKey: string }> {
      const key = await getTeamPublicKey(db, input.teamId);
      if (!key)
        throw ApplicationFailure.nonRetryable(
          'the team has no key yet: add a destination first',
          'NoTeamKey',
        );
      let snapshot = await db
        .selectFrom('snapshots')
        .selectAll()
        .where('operation_id', '=', input.operationId)
        .executeTakeFirst();
      let bucket;
      try {
        bucket = await bucketOf({ team_id: input.teamId, destination_id: input.destinationId });
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
        objectKeys: (id) => snapshotObjectKeys(bucket.prefix, input.teamId, input.environmentId, id),
      });
      await sweep(bucket, input.teamId);
      if (!snapshot.upload_id) {
        const { UploadId } = await bucket.s3
          .send(new CreateMultipartUploadCommand({ Bucket: bucket.bucket, Key: snapshot.data_key }))
          .catch(credentialsRefused(input.destinationId));
        await setUploadId(db, snapshot.id, UploadId!);
      }
      return { snapshotId: snapshot.id, teamPublicKey: key.publicKey.toString('hex') };
    },

    /** Completes the upload and checks what the bucket holds before the snapshot is listed. */
    async completeBackup(input: { snapshotId: string; capture: CaptureResult }): Promise<void> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      const { s3, bucket } = await bucketOf(snapshot);
      const { capture } = input;
      try {
        await s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: snapshot.data_key,
            UploadId: snapshot.upload_id!,
            MultipartUpload: {
              Parts: capture.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
            },
          }),
        );
      } catch (err) {
        // A retry after a completion that did succeed finds no upload: the size check below decides.
        if (s3ErrorName(err) !== 'NoSuchUpload') throw err;
      }
      const data = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: snapshot.data_key }));
      if (data.ContentLength !== capture.sizeBytes) {
        throw ApplicationFailure.nonRetryable(
          `the stored snapshot has ${data.ContentLength} bytes, the agent sent ${capture.sizeBytes}`,
          'UploadMismatch',
        );
      }
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: snapshot.manifest_key }));
      await markComplete(db, snapshot.id, capture);
    },

    /** After a final failure: the snapshot is never listed, and nothing half-written stays in the bucket. */
    async abortBackup(input: { snapshotId: string; error: string }): Promise<void> {
      const snapshot = await getSnapshotById(db, input.snapshotId);
      if (snapshot.status === 'complete') return;
      // The record first: even if the bucket cannot be reached now, the snapshot is already not offered.
      await markFailed(db, snapshot.id, input.error);
      // Best effort: with the bucket unreachable the failure must still end promptly; the next backup's
      // sweep aborts what is left.
      try {
        const { s3, bucket } = await bucketOf(snapshot);
        if (snapshot.upload_id) {
          await s3.send(
            new AbortMultipartUploadCommand({
              Bucket: bucket,
              Key: snapshot.data_key,
              UploadId: snapshot.upload_id,
            }),
          );
        }
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: snapshot.manifest_key }));
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

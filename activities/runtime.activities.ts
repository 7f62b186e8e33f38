import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import type { AgentKey } from '../agent/agent-key.ts';
import { ControlPlaneError, type ControlPlaneClient } from '../agent/control-plane-client.ts';
import { PartUploadError } from '../agent/http-upload.ts';
import { RuntimeError, type Runtime } from '../agent/runtime.ts';
import {
  captureSnapshot,
  type CaptureInput,
  type CaptureProgress,
  type CaptureResult,
} from '../agent/snapshot-capture.ts';
import type { RateLimit } from '../agent/rate-limit.ts';
import { DownloadError } from '../agent/http-download.ts';
import {
  discardRestore,
  fetchAndUnpack,
  finishRestore,
  preflightRestore,
  RestoreError,
  swapBack,
  swapIn,
  type RestoreRef,
} from '../agent/snapshot-restore.ts';
import { verifyStoredSnapshot } from '../agent/snapshot-verify.ts';
import { ArchiveError } from '../format/archive-writer.ts';
import { CertificateMismatchError } from '../receiver/pinned-client.ts';

interface Deps {
  runtime: Runtime;
  controlPlane: Pick<
    ControlPlaneClient,
    'environmentSpec' | 'partUrls' | 'manifestUrl' | 'uploadedParts' | 'restoreAccess' | 'verificationAccess'
  >;
  serverId: string;
  agentKey: AgentKey;
  uploadLimit?: RateLimit;
  downloadLimit?: RateLimit;
}

interface EnvironmentRef {
  environmentId: string;
}

/** Permanent failures must not be retried; everything else (network, a restarting API) is. */
function permanentFailures<A, R>(fn: (input: A) => Promise<R>): (input: A) => Promise<R> {
  return async (input) => {
    try {
      return await fn(input);
    } catch (err) {
      if (err instanceof RuntimeError || err instanceof RestoreError) {
        throw ApplicationFailure.nonRetryable(err.message, err.type);
      }
      if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500) {
        throw ApplicationFailure.nonRetryable(err.message, 'NotForThisServer');
      }
      // 4xx from the storage on a presigned URL: revoked credentials or a bucket gone; retrying won't help.
      if (
        (err instanceof PartUploadError || err instanceof DownloadError) &&
        err.status &&
        err.status >= 400 &&
        err.status < 500
      ) {
        throw ApplicationFailure.nonRetryable(err.message, 'StorageRefused');
      }
      // A receiver whose disk is full: retrying only fills it again; earlier snapshots there are intact.
      if (err instanceof PartUploadError && err.status === 507)
        throw ApplicationFailure.nonRetryable(err.message, 'StorageFull');
      // Not the customer's receiver (or a certificate they replaced): nothing is sent until they say so.
      if (err instanceof CertificateMismatchError)
        throw ApplicationFailure.nonRetryable(err.message, 'CertificateMismatch');
      if (err instanceof ArchiveError) throw ApplicationFailure.nonRetryable(err.message, 'CannotArchive');
      throw err;
    }
  };
}

/** Host-local activities, registered only by agents on their own server's task queue. */
export function createRuntimeActivities({
  runtime,
  controlPlane,
  serverId,
  agentKey,
  uploadLimit,
  downloadLimit,
}: Deps) {
  const restoreDeps = { runtime, controlPlane, agentKey, downloadLimit };
  return {
    captureSnapshot: permanentFailures(async (input: CaptureInput): Promise<CaptureResult> => {
      const spec = await controlPlane.environmentSpec(input.environmentId);
      let progress: CaptureProgress = {
        bytesCaptured: 0,
        bytesExpected: null,
        bytesUploaded: 0,
        partsUploaded: 0,
        completedParts: '',
      };
      // A part on a slow uplink can take longer than the heartbeat timeout: beat between parts too.
      const beat = setInterval(() => heartbeat(progress), 10_000);
      try {
        return await captureSnapshot({ runtime, controlPlane, serverId, uploadLimit }, spec, input, (p) =>
          heartbeat((progress = p)),
        );
      } finally {
        clearInterval(beat);
      }
    }),

    startEnvironment: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.start(await controlPlane.environmentSpec(environmentId));
    }),

    /** Resolves with the time the last service answered healthy, for a restore's downtime. */
    waitHealthy: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.waitHealthy(await controlPlane.environmentSpec(environmentId), (progress) =>
        heartbeat(progress),
      );
      return { healthyAt: Date.now() };
    }),

    /** Says whether anything was running, so a compensation starts again only what it stopped. */
    stopEnvironment: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      const stoppingAt = Date.now();
      const wasRunning = (await runtime.status(environmentId)).some((s) => s.running);
      await runtime.stop(environmentId);
      return { wasRunning, stoppingAt };
    }),

    preflightRestore: permanentFailures((ref: RestoreRef) => preflightRestore(restoreDeps, ref)),

    fetchAndUnpack: permanentFailures((ref: RestoreRef) =>
      fetchAndUnpack(
        restoreDeps,
        ref,
        (progress) => heartbeat(progress),
        Context.current().cancellationSignal,
      ),
    ),

    /** Streams a stored snapshot and checks all of it, writing nothing; a bad snapshot is a RestoreError. */
    verifySnapshotOnHost: permanentFailures((ref: RestoreRef) =>
      verifyStoredSnapshot(
        restoreDeps,
        ref,
        (progress) => heartbeat(progress),
        Context.current().cancellationSignal,
      ),
    ),

    swapIn: permanentFailures((ref: RestoreRef) => swapIn(runtime, ref)),
    swapBack: permanentFailures((ref: RestoreRef) => swapBack(runtime, ref)),
    discardRestore: permanentFailures((ref: RestoreRef) => discardRestore(runtime, ref)),
    finishRestore: permanentFailures((ref: RestoreRef) => finishRestore(runtime, ref)),
  };
}

export type RuntimeActivities = ReturnType<typeof createRuntimeActivities>;

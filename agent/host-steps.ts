import type { HostTaskInput, HostTaskName, HostTaskResult } from '../common/host-tasks.ts';
import { ArchiveError } from '../format/archive-writer.ts';
import { CertificateMismatchError } from '../storage/pinned-client.ts';
import type { AgentKey } from './agent-key.ts';
import { ControlPlaneError, type ControlPlaneClient } from './control-plane-client.ts';
import { DownloadError } from './http-download.ts';
import { PartUploadError } from './http-upload.ts';
import type { RateLimit } from './rate-limit.ts';
import { RuntimeError, type Runtime } from './runtime.ts';
import type { DedupCaptured, DedupCaptureInput } from './dedup-capture.ts';
import { captureSnapshot, type CaptureInput, type CaptureResult } from './snapshot-capture.ts';
import {
  discardRestore,
  fetchAndUnpack,
  finishRestore,
  preflightRestore,
  swapBack,
  swapIn,
} from './snapshot-restore.ts';
import { verifyStoredSnapshot } from './snapshot-verify.ts';
import { RestoreError, type RestoreRef } from './stored-snapshot.ts';
import { permanent, type TaskContext } from './task-failure.ts';

interface Deps {
  runtime: Runtime;
  controlPlane: Pick<
    ControlPlaneClient,
    | 'environmentSpec'
    | 'dedupKey'
    | 'chunksNeeded'
    | 'startPack'
    | 'packStored'
    | 'chunksReferenced'
    | 'partUrls'
    | 'manifestUrl'
    | 'uploadedParts'
    | 'restoreAccess'
    | 'locateRestoreChunks'
    | 'restorePackAccess'
    | 'verificationAccess'
    | 'locateVerificationChunks'
    | 'verificationPackAccess'
    | 'reportDamage'
    | 'confirmRestore'
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
function permanentFailures<A, R>(
  fn: (input: A, ctx: TaskContext) => Promise<R>,
): (input: A, ctx: TaskContext) => Promise<R> {
  return async (input, ctx) => {
    try {
      return await fn(input, ctx);
    } catch (err) {
      if (err instanceof RuntimeError || err instanceof RestoreError) {
        throw permanent(err.message, err.type);
      }
      if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500) {
        throw permanent(err.message, 'NotForThisServer');
      }
      // 4xx from the storage on a presigned URL: revoked credentials or a bucket gone; retrying won't help.
      if (
        (err instanceof PartUploadError || err instanceof DownloadError) &&
        err.status &&
        err.status >= 400 &&
        err.status < 500
      ) {
        throw permanent(err.message, 'StorageRefused');
      }
      // A receiver whose disk is full: retrying only fills it again; earlier snapshots there are intact.
      if (err instanceof PartUploadError && err.status === 507) throw permanent(err.message, 'StorageFull');
      // Not the customer's receiver (or a certificate they replaced): nothing is sent until they say so.
      if (err instanceof CertificateMismatchError) throw permanent(err.message, 'CertificateMismatch');
      if (err instanceof ArchiveError) throw permanent(err.message, 'CannotArchive');
      throw err;
    }
  };
}

export type HostSteps = {
  [N in HostTaskName]: (input: HostTaskInput<N>, ctx: TaskContext) => Promise<HostTaskResult<N>>;
};

/**
 * What each host step does on this server. The agent runs them for the tasks it takes from the API,
 * with inputs already checked against their schemas (common/host-tasks.ts).
 */
export function createHostSteps({
  runtime,
  controlPlane,
  serverId,
  agentKey,
  uploadLimit,
  downloadLimit,
}: Deps) {
  // Per task, with the task's logger.
  const restoreDeps = (ctx: TaskContext) => ({
    runtime,
    controlPlane,
    agentKey,
    downloadLimit,
    log: ctx.log,
  });
  const confirmed =
    (step: (ref: RestoreRef) => Promise<void>) =>
    async (ref: RestoreRef): Promise<void> => {
      await controlPlane.confirmRestore(ref);
      await step(ref);
    };
  return {
    captureDedupSnapshot: permanentFailures(async (input: DedupCaptureInput, ctx): Promise<DedupCaptured> => {
      // Loaded at its first use, as libsodium and zstd are: an agent that takes no format-2 backup
      // does not build its schemas and tables (0.5 MiB of idle RSS).
      const { captureDedupSnapshot } = await import('./dedup-capture.ts');
      return captureDedupSnapshot(
        { runtime, controlPlane, serverId, uploadLimit, log: ctx.log },
        await controlPlane.environmentSpec(input.environmentId),
        input,
        (p) => ctx.heartbeat(p),
        ctx.signal,
      );
    }),
    captureSnapshot: permanentFailures(async (input: CaptureInput, ctx): Promise<CaptureResult> => {
      const spec = await controlPlane.environmentSpec(input.environmentId);
      // The task runner repeats the latest progress every few seconds, also while a part is in flight.
      return captureSnapshot(
        { runtime, controlPlane, serverId, uploadLimit, log: ctx.log },
        spec,
        input,
        (p) => ctx.heartbeat(p),
        ctx.signal,
      );
    }),

    startEnvironment: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.start(await controlPlane.environmentSpec(environmentId));
    }),

    /** Resolves with the time the last service answered healthy, for a restore's downtime. */
    waitHealthy: permanentFailures(async ({ environmentId }: EnvironmentRef, ctx) => {
      await runtime.waitHealthy(await controlPlane.environmentSpec(environmentId), (progress) =>
        ctx.heartbeat(progress),
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

    preflightRestore: permanentFailures((ref: RestoreRef, ctx) => preflightRestore(restoreDeps(ctx), ref)),

    fetchAndUnpack: permanentFailures((ref: RestoreRef, ctx) =>
      fetchAndUnpack(restoreDeps(ctx), ref, (progress) => ctx.heartbeat(progress), ctx.signal),
    ),

    /** Streams a stored snapshot and checks all of it, writing nothing; a bad snapshot is a RestoreError. */
    verifySnapshotOnHost: permanentFailures((ref: RestoreRef & { subset?: number }, ctx) =>
      verifyStoredSnapshot(restoreDeps(ctx), ref, (progress) => ctx.heartbeat(progress), ctx.signal),
    ),

    // Destructive steps first ask the control plane whether this server has that restore at all.
    swapIn: permanentFailures(confirmed((ref) => swapIn(runtime, ref))),
    swapBack: permanentFailures(confirmed((ref) => swapBack(runtime, ref))),
    discardRestore: permanentFailures(confirmed((ref) => discardRestore(runtime, ref))),
    finishRestore: permanentFailures(confirmed((ref) => finishRestore(runtime, ref))),
  } satisfies HostSteps;
}

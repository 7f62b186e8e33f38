import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { ControlPlaneError, type ControlPlaneClient } from '../agent/control-plane-client.ts';
import { PartUploadError } from '../agent/part-uploader.ts';
import { RuntimeError, type Runtime } from '../agent/runtime.ts';
import { captureSnapshot, type CaptureInput, type CaptureResult } from '../agent/snapshot-capture.ts';
import { ArchiveError } from '../format/archive-writer.ts';

interface Deps {
  runtime: Runtime;
  controlPlane: Pick<ControlPlaneClient, 'environmentSpec' | 'partUrls' | 'manifestUrl'>;
  serverId: string;
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
      if (err instanceof RuntimeError) throw ApplicationFailure.nonRetryable(err.message, err.type);
      if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500) {
        throw ApplicationFailure.nonRetryable(err.message, 'NotForThisServer');
      }
      // 4xx from the storage on a presigned URL: revoked credentials or a bucket gone; retrying won't help.
      if (err instanceof PartUploadError && err.status && err.status >= 400 && err.status < 500) {
        throw ApplicationFailure.nonRetryable(err.message, 'StorageRefused');
      }
      if (err instanceof ArchiveError) throw ApplicationFailure.nonRetryable(err.message, 'CannotArchive');
      throw err;
    }
  };
}

/** Host-local activities, registered only by agents on their own server's task queue. */
export function createRuntimeActivities({ runtime, controlPlane, serverId }: Deps) {
  return {
    captureSnapshot: permanentFailures(async (input: CaptureInput): Promise<CaptureResult> => {
      const spec = await controlPlane.environmentSpec(input.environmentId);
      return captureSnapshot({ runtime, controlPlane, serverId }, spec, input, (progress) =>
        heartbeat(progress),
      );
    }),

    startEnvironment: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.start(await controlPlane.environmentSpec(environmentId));
    }),

    waitHealthy: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.waitHealthy(await controlPlane.environmentSpec(environmentId), (progress) =>
        heartbeat(progress),
      );
    }),

    stopEnvironment: permanentFailures(async ({ environmentId }: EnvironmentRef) => {
      await runtime.stop(environmentId);
    }),
  };
}

export type RuntimeActivities = ReturnType<typeof createRuntimeActivities>;

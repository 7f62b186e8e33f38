import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { ControlPlaneError, type ControlPlaneClient } from '../agent/control-plane-client.ts';
import { RuntimeError, type Runtime } from '../agent/runtime.ts';

interface Deps {
  runtime: Runtime;
  controlPlane: Pick<ControlPlaneClient, 'environmentSpec'>;
}

interface EnvironmentRef {
  environmentId: string;
}

/** Permanent failures must not be retried; everything else (network, a restarting API) is. */
function permanentFailures<A>(fn: (input: A) => Promise<void>): (input: A) => Promise<void> {
  return async (input) => {
    try {
      await fn(input);
    } catch (err) {
      if (err instanceof RuntimeError) throw ApplicationFailure.nonRetryable(err.message, err.type);
      if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500) {
        throw ApplicationFailure.nonRetryable(err.message, 'EnvironmentNotOnServer');
      }
      throw err;
    }
  };
}

/** Host-local activities, registered only by agents on their own server's task queue. */
export function createRuntimeActivities({ runtime, controlPlane }: Deps) {
  return {
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

import { ApplicationFailure, CompleteAsyncError, Context } from '@temporalio/activity';
import {
  hostTaskNames,
  type HostTaskEnvelope,
  type HostTaskName,
  type HostTaskResult,
} from '../common/host-tasks.ts';
import { enqueueAgentTask } from '../db/agent-tasks.data.ts';
import type { Db } from '../db/database.ts';
import { agentPresence } from '../db/servers.data.ts';

export type HostTaskActivities = {
  [N in HostTaskName]: (task: HostTaskEnvelope<N>) => Promise<HostTaskResult<N>>;
};

/**
 * The host steps as the control-plane worker runs them: each records its task for the server's agent
 * and completes asynchronously, when the agent answers through the API. Temporal's timeouts, retries
 * and cancellation apply as to any activity, and the Temporal UI shows each under the step's name.
 * Agents never talk to Temporal, so nothing a server's root can do reaches another server's work.
 */
export function createHostTaskActivities({ db, agentStaleAfterMs }: { db: Db; agentStaleAfterMs: number }) {
  const dispatch =
    (activity: HostTaskName) =>
    async ({ serverId, input }: HostTaskEnvelope): Promise<never> => {
      // Nothing else can run a host step, so an agent not polling would only let it time out, later and vaguer.
      const presence = await agentPresence(db, serverId, agentStaleAfterMs);
      if (!presence.connected)
        throw ApplicationFailure.nonRetryable(
          `the agent of server ${serverId} is offline: it has not reached the API since ${presence.lastSeenAt ?? 'it was registered'}; start it (or let it reach the API again) and retry`,
          'AgentOffline',
        );
      const info = Context.current().info;
      await enqueueAgentTask(db, {
        serverId,
        activity,
        input,
        taskToken: info.taskToken,
        workflowId: info.workflowExecution?.workflowId ?? '',
        activityId: info.activityId,
        attempt: info.attempt,
      });
      throw new CompleteAsyncError();
    };
  return Object.fromEntries(
    hostTaskNames.map((name) => [name, dispatch(name)]),
  ) as unknown as HostTaskActivities;
}

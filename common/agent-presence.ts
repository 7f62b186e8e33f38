import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { agentTaskQueue } from '../common/task-queues.ts';

export interface Presence {
  connected: boolean;
  lastSeenAt: string | null;
}

const { TaskQueueKind, TaskQueueType } = proto.temporal.api.enums.v1;

/**
 * Whether a server's agent is connected, judged from Temporal's own view of its task queue rather
 * than a heartbeat table of ours. A long poll is re-issued at least once per poll interval, so a
 * poller last seen longer ago than that (plus slack) is gone; Temporal itself lists dead pollers
 * for minutes, which is why the timestamp, not the list, decides.
 */
export async function agentPresence(
  client: Client,
  serverId: string,
  staleAfterMs: number,
): Promise<Presence> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: agentTaskQueue(serverId), kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  const lastSeen = Math.max(
    0,
    ...(res.pollers ?? []).map((p) => (p.lastAccessTime ? tsToMs(p.lastAccessTime) : 0)),
  );
  return {
    connected: lastSeen > 0 && Date.now() - lastSeen <= staleAfterMs,
    lastSeenAt: lastSeen > 0 ? new Date(lastSeen).toISOString() : null,
  };
}

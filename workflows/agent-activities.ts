import { proxyActivities } from '@temporalio/workflow';
import type { RuntimeActivities } from '../activities/runtime.activities.ts';
import { agentTaskQueue } from '../common/task-queues.ts';

/**
 * Host-bound activities go to the server's own queue. Nothing else polls it, so an offline agent
 * would leave work waiting forever: scheduleToStartTimeout turns that into a prompt, clear failure.
 */
export function agentActivities(serverId: string) {
  return proxyActivities<RuntimeActivities>({
    taskQueue: agentTaskQueue(serverId),
    scheduleToStartTimeout: '2 minutes',
    // Long enough for a snapshot of hundreds of GB; a dead agent is noticed by the heartbeat timeout instead.
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '30 seconds',
    retry: { maximumAttempts: 5, maximumInterval: '30 seconds' },
  });
}

import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { HostTaskActivities } from '../activities/host-tasks.activities.ts';
import type { HostActivities } from '../common/host-tasks.ts';

const host = proxyActivities<HostTaskActivities>({
  // Long enough for a snapshot of hundreds of GB; a dead agent is noticed by the heartbeat timeout instead.
  startToCloseTimeout: '12 hours',
  // The agent reports at least every few seconds while it works; silence this long means it is gone.
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 5, maximumInterval: '30 seconds' },
  // A cancelled step ends on the server before the workflow moves on: a restore's clean-up must not
  // delete staging under a download still writing it. The agent hears of it within a heartbeat (2 s).
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/**
 * Host-bound steps of one server. They run as control-plane activities that hand the work to that
 * server's agent through the API (activities/host-tasks.activities.ts); one whose agent is offline
 * fails at once as AgentOffline, not retried.
 */
export function agentActivities(serverId: string): HostActivities {
  return new Proxy({} as HostActivities, {
    get: (_, name: keyof HostActivities) => (input: never) => host[name]({ serverId, input }),
  });
}

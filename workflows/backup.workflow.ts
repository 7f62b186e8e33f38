import { CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup.activities.ts';
import type { HostTaskResult } from '../common/host-tasks.ts';
import type { BackupInput, BackupResult } from '../common/workflow-contracts.ts';
import { agentActivities } from './agent-activities.ts';
import { failureMessage, OperationTracker } from './operation-tracker.ts';

const retry = { maximumInterval: '1 minute', maximumAttempts: 10 };
// Bookkeeping, as in the other workflows: a few rows and storage requests, seconds of work; two
// minutes bound one that hangs.
const control = proxyActivities<BackupActivities>({ startToCloseTimeout: '2 minutes', retry });
// The storage joins the uploaded parts meanwhile (a receiver at a few seconds a GiB): an hour bounds
// that for hundreds of GB. A worker dying under it is noticed by the heartbeat timeout instead, as a
// dead agent is in a host step, and the other worker runs it again within seconds.
const { completeBackup } = proxyActivities<BackupActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '15 seconds',
  retry,
});

/** How the point in time was taken and how long the services were held; and what a resumed upload found. */
function captureNote(c: HostTaskResult<'captureSnapshot'>): string {
  const methods = Object.entries(c.methods ?? {}).map(([volume, method]) => `${volume} ${method}`);
  const taken = `held ${c.frozenMs} ms${methods.length ? `; ${methods.join(', ')}` : ''}`;
  return c.partsResumed
    ? `${taken}; resumed: ${c.partsResumed} of ${c.parts.length} parts were already stored`
    : taken;
}

// Workflow names live in histories and schedules: never rename this function.
export async function backupEnvironment(input: BackupInput): Promise<BackupResult> {
  const tracker = new OperationTracker(input.operationId, [
    'prepare',
    'capture and upload',
    'verify and record',
  ]);
  const agent = agentActivities(input.serverId);
  return tracker.run(async () => {
    const { snapshotId, teamPublicKey } = await tracker.step('prepare', () =>
      control.prepareBackup({
        operationId: input.operationId,
        teamId: input.teamId,
        environmentId: input.environmentId,
        serverId: input.serverId,
        destinationId: input.destinationId,
      }),
    );
    try {
      const capture = await tracker.step(
        'capture and upload',
        () => agent.captureSnapshot({ snapshotId, environmentId: input.environmentId, teamPublicKey }),
        (c) => c.sizeBytes,
        (c) => captureNote(c),
      );
      await tracker.step('verify and record', () => completeBackup({ snapshotId, capture }));
      return { snapshotId };
    } catch (err) {
      // Runs even when the workflow is cancelled: a half-written upload must not outlive the operation.
      await CancellationScope.nonCancellable(() =>
        control.abortBackup({ snapshotId, error: failureMessage(err) }),
      );
      throw err;
    }
  });
}

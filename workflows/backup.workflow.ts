import { CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup.activities.ts';
import type { HostTaskResult } from '../common/host-tasks.ts';
import type { BackupInput, BackupResult } from '../common/workflow-contracts.ts';
import { agentActivities } from './agent-activities.ts';
import { failureMessage, OperationTracker } from './operation-tracker.ts';

const control = proxyActivities<BackupActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', maximumAttempts: 10 },
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
      await tracker.step('verify and record', () => control.completeBackup({ snapshotId, capture }));
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

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
// Format 2's completion is a few requests (the manifest's size, a count, one update), yet it is what
// the backup's last moments wait on: a worker dying under it costs this, not two minutes, before the
// other worker runs it again (cluster-failover.test.ts).
const { completeDedupBackup } = proxyActivities<BackupActivities>({
  startToCloseTimeout: '15 seconds',
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

/** The same for format 2, and what deduplication spared: files not read, bytes not sent. */
function dedupCaptureNote(c: HostTaskResult<'captureDedupSnapshot'>): string {
  const methods = Object.entries(c.methods).map(([volume, method]) => `${volume} ${method}`);
  const { filesRead, filesUnchanged, bytesRead, bytesInPlace, bytesStored, packs } = c.figures;
  const inPlace = bytesInPlace ? `, ${bytesInPlace} of them chunks found in place` : '';
  return (
    `held ${c.frozenMs} ms${methods.length ? `; ${methods.join(', ')}` : ''}; ` +
    `${filesRead} files read (${bytesRead} bytes${inPlace}), ${filesUnchanged} unchanged; ` +
    `${bytesStored} bytes new in ${packs} packs`
  );
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
    const { snapshotId, teamPublicKey, formatVersion } = await tracker.step('prepare', () =>
      control.prepareBackup({
        operationId: input.operationId,
        teamId: input.teamId,
        environmentId: input.environmentId,
        serverId: input.serverId,
        destinationId: input.destinationId,
      }),
    );
    const capture = { snapshotId, environmentId: input.environmentId, teamPublicKey };
    try {
      // Histories from before format 2 have no formatVersion: theirs were all format 1.
      if (formatVersion === 2) {
        const captured = await tracker.step(
          'capture and upload',
          () => agent.captureDedupSnapshot(capture),
          (c) => c.figures.packedBytes,
          (c) => dedupCaptureNote(c),
        );
        await tracker.step('verify and record', () => completeDedupBackup({ snapshotId, capture: captured }));
      } else {
        const captured = await tracker.step(
          'capture and upload',
          () => agent.captureSnapshot(capture),
          (c) => c.sizeBytes,
          (c) => captureNote(c),
        );
        await tracker.step('verify and record', () => completeBackup({ snapshotId, capture: captured }));
      }
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

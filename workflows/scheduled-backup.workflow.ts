import {
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ScheduleActivities } from '../activities/schedule.activities.ts';
import {
  environmentAttribute,
  operationAttribute,
  serverAttribute,
  teamAttribute,
} from '../common/search-attributes.ts';
import { failureMessage } from './operation-tracker.ts';

const control = proxyActivities<ScheduleActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** The time Temporal meant this run for: a scheduled workflow's id ends with it (RFC 3339). */
function nominalTime(): string {
  const info = workflowInfo();
  const suffix = /-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/.exec(info.workflowId)?.[1];
  return suffix ?? new Date(info.startTime).toISOString();
}

// Workflow names live in histories and schedules: never rename this function.
/**
 * One run of a backup schedule: records it, runs the same backup workflow a manual backup does (a
 * child with its own readable id and search attributes), and records how it ended. It lasts as long
 * as the backup, so Temporal's overlap policy (skip or buffer one) sees a backup still running.
 */
export async function scheduledBackup({
  scheduleId,
}: {
  scheduleId: string;
}): Promise<{ snapshotId?: string }> {
  const nominalAt = nominalTime();
  const run = await control.beginScheduledRun({ scheduleId, nominalAt });
  if (!run.start) return {};
  try {
    const { snapshotId } = await executeChild('backupEnvironment', {
      workflowId: run.workflowId,
      args: [run.input],
      typedSearchAttributes: [
        { key: teamAttribute, value: run.input.teamId },
        { key: environmentAttribute, value: run.input.environmentId },
        { key: serverAttribute, value: run.input.serverId },
        { key: operationAttribute, value: 'backup' },
      ],
    });
    await control.finishScheduledRun({ scheduleId, nominalAt, snapshotId });
    await afterBackup(scheduleId, nominalAt, snapshotId, run.input);
    return { snapshotId };
  } catch (err) {
    await control.finishScheduledRun({ scheduleId, nominalAt, error: failureMessage(err) });
    throw err;
  }
}

/**
 * After a scheduled backup: its verification when the schedule asks for one (started, not awaited),
 * then the schedule's retention. Each is a workflow of its own, with its own history; neither failing
 * fails the run, whose snapshot is made (a failed verification is recorded on the snapshot and notified).
 */
async function afterBackup(
  scheduleId: string,
  nominalAt: string,
  snapshotId: string,
  backup: { teamId: string; environmentId: string },
): Promise<void> {
  const verification = await control.scheduledVerification({ scheduleId, nominalAt, snapshotId });
  // Not awaited: the run, which Temporal's overlap policy watches, ends with its backup and prune.
  if (verification)
    await startChild('verifySnapshot', {
      workflowId: verification.workflowId,
      args: [verification.input],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: teamAttribute, value: verification.input.teamId },
        { key: environmentAttribute, value: verification.input.environmentId },
        { key: serverAttribute, value: verification.input.serverId },
        { key: operationAttribute, value: 'verify' },
      ],
    }).catch(() => undefined); // already started by an earlier attempt of this run
  await executeChild('pruneSnapshots', {
    workflowId: `prune-${scheduleId}-${nominalAt}`,
    args: [{ scheduleId }],
    typedSearchAttributes: [
      { key: teamAttribute, value: backup.teamId },
      { key: environmentAttribute, value: backup.environmentId },
    ],
  }).catch(() => undefined);
}

// Workflow names live in histories and schedules: never rename this function.
/** Started every few minutes by the strackt-missed-backups schedule: tells runs that never started. */
export async function watchMissedBackups(): Promise<{ missed: number }> {
  return control.sweepMissedRuns();
}

import {
  executeChild,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ScheduleActivities } from '../activities/schedule.activities.ts';
import {
  nominalTimeOf,
  operationStart,
  pruneStart,
  type ScheduledBackupInput,
  type ScheduledBackupResult,
} from '../common/workflow-contracts.ts';
import { backupEnvironment } from './backup.workflow.ts';
import { failureMessage } from './operation-tracker.ts';
import { pruneSnapshots } from './prune.workflow.ts';
import { verifySnapshot } from './verify.workflow.ts';

const retry = { maximumInterval: '30 seconds', maximumAttempts: 10 } as const;
const control = proxyActivities<ScheduleActivities>({ startToCloseTimeout: '1 minute', retry });
// The run's own records are a few queries each, in the worker that runs the workflow: as local
// activities they cost no task queue round trip and no workflow task of their own. At a thousand
// environments those round trips, queued behind each minute's burst of runs, were seconds of the
// time from a run's due time to its backup's start (bench:load).
const local = proxyLocalActivities<ScheduleActivities>({ startToCloseTimeout: '1 minute', retry });

/** The time Temporal meant this run for: a scheduled workflow's id ends with it (RFC 3339). */
function nominalTime(): string {
  const info = workflowInfo();
  return nominalTimeOf(info.workflowId) ?? new Date(info.startTime).toISOString();
}

// Workflow names live in histories and schedules: never rename this function.
/**
 * One run of a backup schedule: records it, runs the same backup workflow a manual backup does (a
 * child with its own readable id and search attributes), and records how it ended. It lasts as long
 * as the backup, so Temporal's overlap policy (skip or buffer one) sees a backup still running.
 */
export async function scheduledBackup({ scheduleId }: ScheduledBackupInput): Promise<ScheduledBackupResult> {
  const nominalAt = nominalTime();
  // Patched: runs that started before replay with the records as activities.
  const records = patched('scheduled-run-records-local') ? local : control;
  const run = await records.beginScheduledRun({ scheduleId, nominalAt });
  if (!run.start) return {};
  try {
    const { snapshotId } = await executeChild(
      backupEnvironment,
      operationStart('backup', run.workflowId, run.input, run.labels),
    );
    await records.finishScheduledRun({ scheduleId, nominalAt, snapshotId });
    await afterBackup(records, scheduleId, nominalAt, snapshotId, run.input);
    return { snapshotId };
  } catch (err) {
    await records.finishScheduledRun({ scheduleId, nominalAt, error: failureMessage(err) });
    throw err;
  }
}

/**
 * After a scheduled backup: its verification when the schedule asks for one (started, not awaited),
 * then the schedule's retention. Each is a workflow of its own, with its own history; neither failing
 * fails the run, whose snapshot is made (a failed verification is recorded on the snapshot and notified).
 */
async function afterBackup(
  records: typeof control,
  scheduleId: string,
  nominalAt: string,
  snapshotId: string,
  backup: { teamId: string; environmentId: string },
): Promise<void> {
  const verification = await records.scheduledVerification({ scheduleId, nominalAt, snapshotId });
  // Not awaited: the run, which Temporal's overlap policy watches, ends with its backup and prune.
  if (verification)
    await startChild(verifySnapshot, {
      ...operationStart('verify', verification.workflowId, verification.input, verification.labels),
      parentClosePolicy: ParentClosePolicy.ABANDON,
    }).catch(() => undefined); // already started by an earlier attempt of this run
  // The run's nominal time in the id: a run prunes once.
  await executeChild(
    pruneSnapshots,
    pruneStart({ teamId: backup.teamId, environmentId: backup.environmentId, scheduleId }, nominalAt),
  ).catch(() => undefined);
}

// Workflow names live in histories and schedules: never rename this function.
/** Started every few minutes by the strackt-missed-backups schedule: tells runs that never started. */
export async function watchMissedBackups(): Promise<{ missed: number }> {
  return control.sweepMissedRuns();
}

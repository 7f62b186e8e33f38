import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { nominalTimeOf } from '../../common/workflow-contracts.ts';
import { missedBackupsScheduleId } from '../../worker/missed-backups-watch.ts';

async function listed(temporal: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const all: WorkflowExecutionInfo[] = [];
  for await (const info of temporal.workflow.list({ query })) all.push(info);
  return all;
}

/** The time Temporal meant a scheduled workflow for: its TemporalScheduledStartTime, else its id's tail. */
function scheduledAt(info: WorkflowExecutionInfo): number | undefined {
  const attr = info.searchAttributes?.TemporalScheduledStartTime?.[0];
  if (attr instanceof Date) return attr.getTime();
  const fromId = nominalTimeOf(info.workflowId);
  return fromId ? Date.parse(fromId) : undefined;
}

export interface Lateness {
  /** Nominal time to the scheduledBackup workflow's start: Temporal's scheduler alone. */
  toRunStart: number[];
  /** Nominal time to its backupEnvironment child's start: the scheduler plus the run's first activity. */
  toBackupStart: number[];
  /** Each of toBackupStart's runs' nominal time (epoch ms), in the same order. */
  backupNominal: number[];
  /** The scheduledBackup runs' workflow ids. */
  runIds: string[];
}

/** Lateness of every scheduled run that started at or after `since`. */
export async function scheduleLateness(temporal: Client, since: Date): Promise<Lateness> {
  const after = `StartTime >= "${since.toISOString()}"`;
  const runs = await listed(temporal, `WorkflowType = "scheduledBackup" AND ${after}`);
  const nominalOf = new Map<string, number>();
  const toRunStart: number[] = [];
  for (const run of runs) {
    const at = scheduledAt(run);
    if (at === undefined) continue;
    nominalOf.set(run.workflowId, at);
    toRunStart.push(run.startTime.getTime() - at);
  }
  const toBackupStart: number[] = [];
  const backupNominal: number[] = [];
  for (const backup of await listed(temporal, `WorkflowType = "backupEnvironment" AND ${after}`)) {
    const parent = backup.parentExecution?.workflowId;
    const at = parent ? nominalOf.get(parent) : undefined;
    if (at === undefined) continue;
    toBackupStart.push(backup.startTime.getTime() - at);
    backupNominal.push(at);
  }
  return { toRunStart, toBackupStart, backupNominal, runIds: [...nominalOf.keys()] };
}

/** A history event's time (a protobuf Timestamp) in epoch ms. */
export const epochMs = (
  t: { seconds?: { toString(): string } | null; nanos?: number | null } | null | undefined,
) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

/** Each missed-backups sweep since `since`: its activity's run time (started to completed) and what it found. */
export async function sweepDurations(
  temporal: Client,
  since: Date,
): Promise<{ ms: number; missed: number | undefined }[]> {
  const sweeps = await listed(
    temporal,
    `WorkflowType = "watchMissedBackups" AND StartTime >= "${since.toISOString()}" AND ExecutionStatus = "Completed"`,
  );
  const out: { ms: number; missed: number | undefined }[] = [];
  for (const sweep of sweeps) {
    const handle = temporal.workflow.getHandle(sweep.workflowId, sweep.runId);
    const events = (await handle.fetchHistory()).events ?? [];
    const started = events.find((e) => e.activityTaskStartedEventAttributes);
    const completed = events.find((e) => e.activityTaskCompletedEventAttributes);
    if (!started || !completed) continue;
    const result = (await handle.result().catch(() => undefined)) as { missed?: number } | undefined;
    out.push({ ms: epochMs(completed.eventTime) - epochMs(started.eventTime), missed: result?.missed });
  }
  return out;
}

/** Workflow executions Temporal holds, and the history bytes of those started since `since`. */
export async function temporalState(
  temporal: Client,
  since: Date,
): Promise<{ executions: number; historyBytes: number; started: number }> {
  const { count } = await temporal.workflow.count();
  let historyBytes = 0;
  let started = 0;
  for await (const info of temporal.workflow.list({ query: `StartTime >= "${since.toISOString()}"` })) {
    historyBytes += info.historySize ?? 0;
    started++;
  }
  return { executions: count, historyBytes, started };
}

/**
 * Runs the missed-backups sweep once more now, through its own schedule, and waits (at most two
 * minutes) for it to end: a run shorter than its 5-minute period may otherwise see none, and this
 * one sweeps every schedule's runs of the whole window.
 */
export async function sweepNow(temporal: Client): Promise<void> {
  const asked = new Date();
  await temporal.schedule.getHandle(missedBackupsScheduleId).trigger();
  const query = `WorkflowType = "watchMissedBackups" AND StartTime >= "${asked.toISOString()}" AND ExecutionStatus != "Running"`;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(2_000))
    if ((await temporal.workflow.count(query)).count > 0) return;
}

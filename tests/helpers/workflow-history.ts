import type { Client } from '@temporalio/client';

/** One activity of a workflow run, as its history tells it. */
export interface ActivityRun {
  type: string;
  /** The attempt that ran last: Temporal records one started event per activity, that of the last attempt. */
  attempt: number | undefined;
  completed: boolean;
  /** The worker that ran the last attempt (`pid@host`), and why the attempt before it failed, if one did. */
  identity?: string;
  lastFailure?: string;
}

/** Every activity a workflow scheduled, in order, with the attempt that ran last and whether it completed. */
export async function activityRuns(temporal: Client, workflowId: string): Promise<ActivityRun[]> {
  const events = (await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const runs = new Map<string, ActivityRun>();
  for (const e of events) {
    const id = String(e.eventId);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled)
      runs.set(id, { type: scheduled.activityType?.name ?? '?', attempt: undefined, completed: false });
    const started = e.activityTaskStartedEventAttributes;
    if (started)
      Object.assign(runs.get(String(started.scheduledEventId))!, {
        attempt: started.attempt ?? undefined,
        identity: started.identity ?? undefined,
        lastFailure: started.lastFailure?.message ?? undefined,
      });
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) runs.get(String(completed.scheduledEventId))!.completed = true;
  }
  return [...runs.values()];
}

/**
 * The process ids of the workers that took a workflow's workflow tasks, in order: the SDK's worker
 * identity is `pid@host`.
 */
export async function workflowTaskWorkers(temporal: Client, workflowId: string): Promise<number[]> {
  const events = (await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  return events
    .map((e) => e.workflowTaskStartedEventAttributes?.identity)
    .filter((identity): identity is string => !!identity)
    .map((identity) => Number(identity.split('@')[0]));
}

/**
 * Milliseconds from the completion of the workflow's activity of `type` to the next workflow task's
 * start: how long the workflow waited for a worker to move on (longer when its worker died holding it).
 */
export async function pickUpAfter(temporal: Client, workflowId: string, type: string): Promise<number> {
  const events = (await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
      .map((e) => String(e.eventId)),
  );
  const done = events.findIndex((e) =>
    scheduled.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)),
  );
  const next = events.slice(done).find((e) => e.workflowTaskStartedEventAttributes);
  const ms = (e: (typeof events)[number] | undefined) =>
    Number(e?.eventTime?.seconds ?? NaN) * 1000 + Math.round((e?.eventTime?.nanos ?? 0) / 1e6);
  return ms(next) - ms(events[done]);
}

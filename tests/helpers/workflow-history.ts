import type { Client, WorkflowHandle } from '@temporalio/client';

/** One activity of a workflow run, as its history tells it. */
export interface ActivityRun {
  type: string;
  /** The attempt that ran last: Temporal records one started event per activity, that of the last attempt. */
  attempt: number | undefined;
  completed: boolean;
  /** The worker that ran the last attempt (`pid@host`), and why the attempt before it failed, if one did. */
  identity?: string;
  lastFailure?: string;
  /** How long a worker that died running it holds it: its heartbeat timeout, else its start-to-close. */
  deadWorkerMs: number;
  /** From the last attempt's start to its completion. */
  ms?: number;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
const eventMs = (e: HistoryEvent) =>
  Number(e.eventTime?.seconds ?? NaN) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);
const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : 0;

/** Every activity a workflow scheduled, in order, with the attempt that ran last and whether it completed. */
export async function activityRuns(temporal: Client, workflowId: string): Promise<ActivityRun[]> {
  const events = (await temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const runs = new Map<string, ActivityRun>();
  const startedAt = new Map<string, number>();
  for (const e of events) {
    const id = String(e.eventId);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled)
      runs.set(id, {
        type: scheduled.activityType?.name ?? '?',
        attempt: undefined,
        completed: false,
        deadWorkerMs: durationMs(scheduled.heartbeatTimeout) || durationMs(scheduled.startToCloseTimeout),
      });
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      startedAt.set(String(started.scheduledEventId), eventMs(e));
      Object.assign(runs.get(String(started.scheduledEventId))!, {
        attempt: started.attempt ?? undefined,
        identity: started.identity ?? undefined,
        lastFailure: started.lastFailure?.message ?? undefined,
      });
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed)
      Object.assign(runs.get(String(completed.scheduledEventId))!, {
        completed: true,
        ms: eventMs(e) - startedAt.get(String(completed.scheduledEventId))!,
      });
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
  return done < 0 || !next ? NaN : eventMs(next) - eventMs(events[done]!);
}

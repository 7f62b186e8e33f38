import type { Client } from '@temporalio/client';
import { epochMs } from './temporal-figures.ts';

/** Where a scheduled run's time from its start to its backup's start went, per run, in ms. */
export interface LatenessStages {
  /** The run started to its first workflow task picked up by a worker: the task queue's wait. */
  queued: number[];
  /** That task picked up to completed: the worker's own time, its local activities included. */
  inWorker: number[];
  /** The task completed (the child asked for) to the child's start: Temporal again. */
  childStart: number[];
}

/**
 * The stages of up to `sample` scheduled runs (a spread of them, by workflow id) from their
 * histories: what part of the lateness after Temporal's scheduler is waiting for a worker, the
 * worker itself, or Temporal starting the child.
 */
export async function latenessStages(
  temporal: Client,
  runIds: string[],
  sample = 400,
): Promise<LatenessStages> {
  const step = Math.max(1, Math.floor(runIds.length / sample));
  const stages: LatenessStages = { queued: [], inWorker: [], childStart: [] };
  for (let i = 0; i < runIds.length; i += step) {
    const events = (await temporal.workflow.getHandle(runIds[i]!).fetchHistory()).events ?? [];
    const at = (pick: (e: (typeof events)[number]) => unknown) => {
      const e = events.find(pick);
      return e ? epochMs(e.eventTime) : undefined;
    };
    const started = at((e) => e.workflowExecutionStartedEventAttributes);
    const taskStarted = at((e) => e.workflowTaskStartedEventAttributes);
    const initiated = events.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
    const childStarted = at((e) => e.childWorkflowExecutionStartedEventAttributes);
    if (started === undefined || taskStarted === undefined || !initiated || childStarted === undefined)
      continue;
    // The completed task is the one whose command asked for the child.
    const completedId = Number(
      initiated.startChildWorkflowExecutionInitiatedEventAttributes!.workflowTaskCompletedEventId,
    );
    const completed = at((e) => Number(e.eventId) === completedId);
    if (completed === undefined) continue;
    stages.queued.push(taskStarted - started);
    stages.inWorker.push(completed - taskStarted);
    stages.childStart.push(childStarted - completed);
  }
  return stages;
}

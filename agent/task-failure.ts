import type { Logger } from '../common/log.ts';

/**
 * How a host step fails, as the agent reports it: a type the workflow and the operation show
 * (`StorageFull: ...`), and whether trying again could help. Any other error is reported as retryable.
 */
export class TaskFailure extends Error {
  override name = 'TaskFailure';
  constructor(
    message: string,
    readonly type: string,
    readonly nonRetryable: boolean,
  ) {
    super(message);
  }
}

export const permanent = (message: string, type: string) => new TaskFailure(message, type, true);

/** What a running step may do besides its work: report progress, log, and notice it should stop. */
export interface TaskContext {
  /** Progress for the operation and the Temporal UI; the latest is sent every few seconds. */
  heartbeat(details?: unknown): void;
  /** Aborted when the step's cancellation was requested, or Temporal no longer runs it. */
  signal: AbortSignal;
  /** The agent's logger with the task's id, step and the ids of its input bound. */
  log: Logger;
}

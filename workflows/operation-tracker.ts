import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';
import type { OperationActivities } from '../activities/operations.activities.ts';
import type { OperationProgress, OperationStep, Transfer } from '../common/operations.ts';
import { transferSignalName } from '../common/workflow-contracts.ts';

export const progressQuery = defineQuery<OperationProgress>('progress');
const transferSignal = defineSignal<[Transfer]>(transferSignalName);

// A local activity: it runs in the worker that runs the workflow (which has the database), without a
// round trip through a task queue; an operation records itself a dozen times, and that added seconds.
const { recordOperationProgress } = proxyLocalActivities<OperationActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '30 seconds' },
});

/** The message a user should read: an activity's own failure, not Temporal's wrapper around it. */
export function failureMessage(err: unknown): string {
  let e = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure && e.type) return `${e.type}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Keeps an operation's steps in workflow state (answered by the `progress` query) and mirrors each
 * change into Postgres, so the API can show it even when no worker is up to answer a query.
 */
export class OperationTracker {
  private readonly progress: OperationProgress;

  constructor(
    private readonly operationId: string,
    stepNames: string[],
  ) {
    this.progress = { status: 'running', steps: stepNames.map((name) => ({ name, status: 'pending' })) };
    setHandler(progressQuery, () => this.progress);
    // The running step's live figures, for the query only: they are not worth a database write here.
    setHandler(transferSignal, (transfer) => {
      const running = this.progress.steps.find((s) => s.status === 'running');
      if (running) running.transfer = transfer;
    });
  }

  private stepNamed(name: string): OperationStep {
    const step = this.progress.steps.find((s) => s.name === name);
    if (!step) throw new Error(`unknown step ${name}`);
    return step;
  }

  private async save(): Promise<void> {
    // Recording must survive the workflow's cancellation, or a cancelled operation would stay "running".
    await CancellationScope.nonCancellable(() =>
      recordOperationProgress({ operationId: this.operationId, progress: this.progress }),
    );
  }

  /**
   * Runs one step; `bytesOf` reads from its result how many bytes it moved, for throughput, and
   * `noteOf` what a user should know of how it went.
   */
  async step<T>(
    name: string,
    fn: () => Promise<T>,
    bytesOf?: (result: T) => number,
    noteOf?: (result: T) => string | undefined,
  ): Promise<T> {
    const step = this.stepNamed(name);
    step.status = 'running';
    step.startedAt = new Date().toISOString();
    await this.save();
    try {
      const result = await fn();
      step.status = 'succeeded';
      if (bytesOf) {
        step.bytes = bytesOf(result);
        const seconds = (Date.now() - Date.parse(step.startedAt)) / 1000;
        if (seconds > 0) step.bytesPerSecond = Math.round(step.bytes / seconds);
      }
      step.note = noteOf?.(result);
      return result;
    } catch (err) {
      step.status = 'failed';
      step.error = failureMessage(err);
      throw err;
    } finally {
      step.endedAt = new Date().toISOString();
      delete step.transfer;
    }
  }

  /** Runs the whole operation, recording its end state whether it succeeds, fails or is cancelled. */
  async run<T>(body: () => Promise<T>): Promise<T> {
    await this.save();
    try {
      const result = await body();
      this.progress.status = 'succeeded';
      return result;
    } catch (err) {
      this.progress.status = isCancellation(err) ? 'cancelled' : 'failed';
      this.progress.error = isCancellation(err) ? 'cancelled' : failureMessage(err);
      throw err;
    } finally {
      for (const s of this.progress.steps) if (s.status === 'pending') s.status = 'skipped';
      await this.save();
    }
  }
}

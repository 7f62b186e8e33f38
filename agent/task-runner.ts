import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { hostTasks, isHostTaskName } from '../common/host-tasks.ts';
import { idCharacters } from '../common/ids.ts';
import type { Logger } from '../common/log.ts';
import { ControlPlaneError, type ClaimedTask, type ControlPlaneClient } from './control-plane-client.ts';
import type { HostSteps } from './host-steps.ts';
import { TaskFailure, type TaskContext } from './task-failure.ts';

type Client = Pick<
  ControlPlaneClient,
  'claimTask' | 'taskHeartbeat' | 'completeTask' | 'failTask' | 'taskCancelled'
>;

export interface TaskRunnerOptions {
  /** Steps running at once; a poll waits for a free slot (a verification may run beside a backup). */
  maxConcurrent?: number;
  /** How often a running step's latest progress goes to the API: also how soon it learns of a cancellation. */
  heartbeatEveryMs?: number;
  pollWaitSeconds?: number;
  /** The first wait before polling or reporting again after a failed call; it doubles from there. */
  retryDelayMs?: number;
}

type Outcome =
  | { kind: 'completed'; result: unknown }
  | { kind: 'failed'; message: string; type: string; nonRetryable: boolean }
  | { kind: 'cancelled' }
  | { kind: 'gone' };

/** Stops a step: its cancellation was requested, or Temporal no longer runs it (timed out, retried elsewhere). */
class Stop extends Error {
  constructor(readonly outcome: 'cancelled' | 'gone') {
    super(outcome === 'cancelled' ? 'cancelled' : 'the task is no longer running');
  }
}

/**
 * Takes this server's host steps from the API and runs them: a long poll per free slot, progress
 * reported every few seconds (the answer says whether to stop), and the outcome reported until the
 * API takes it. While the API is away the step keeps working; its reports wait and retry.
 */
let fullCollection: (() => void) | undefined;

/**
 * A backup's or restore's buffers (some 100 MiB, most of them outside the JavaScript heap) are
 * garbage once it ends, but V8 collects them only when its own heap asks for it: the next task then
 * allocated its own beside them. V8's gc, exposed once a task has ended rather than by a flag at
 * start: --expose-gc cost an idle agent 1.2 MiB (Node's built-in code cache no longer matched).
 */
function collectGarbage(): void {
  if (!fullCollection) {
    setFlagsFromString('--expose-gc');
    fullCollection = runInNewContext('gc') as () => void;
  }
  fullCollection();
}

export class TaskRunner {
  private running = 0;
  private readonly inFlight = new Map<string, Promise<void>>();
  private slotFreed: (() => void) | undefined;
  private readonly maxConcurrent: number;
  private readonly heartbeatEveryMs: number;
  private readonly pollWaitSeconds: number;
  private readonly retryDelayMs: number;

  constructor(
    private readonly api: Client,
    private readonly steps: HostSteps,
    private readonly log: Logger,
    options: TaskRunnerOptions = {},
  ) {
    this.maxConcurrent = options.maxConcurrent ?? 8;
    this.heartbeatEveryMs = options.heartbeatEveryMs ?? 2_000;
    this.pollWaitSeconds = options.pollWaitSeconds ?? 20;
    this.retryDelayMs = options.retryDelayMs ?? 500;
  }

  /** Polls until `stop` is aborted; steps already running are left to finish (or be cut by the process's end). */
  async run(stop: AbortSignal): Promise<void> {
    let backoffMs = this.retryDelayMs;
    while (!stop.aborted) {
      await this.freeSlot(stop);
      if (stop.aborted) break;
      let task: ClaimedTask | undefined;
      try {
        task = await this.api.claimTask(this.pollWaitSeconds, stop);
        backoffMs = this.retryDelayMs;
      } catch (err) {
        if (stop.aborted) break;
        if (err instanceof ControlPlaneError && err.status === 401) {
          this.log.warn('the API refused this agent token (rotated, or the server deleted); polling on');
        } else {
          this.log.warn({ error: (err as Error).message }, 'cannot reach the API for tasks; retrying');
        }
        await sleep(backoffMs, undefined, { signal: stop }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, 10_000);
        continue;
      }
      if (task) void this.execute(task);
    }
  }

  /** Waits for a free slot, or for `stop`: steps may hold every slot for hours. */
  private async freeSlot(stop: AbortSignal): Promise<void> {
    while (this.running >= this.maxConcurrent && !stop.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stop.removeEventListener('abort', done);
          resolve();
        };
        this.slotFreed = done;
        stop.addEventListener('abort', done);
      });
    }
  }

  private async execute(task: ClaimedTask): Promise<void> {
    this.running++;
    const started = Date.now();
    // Every line of the step carries these, so `grep snap_...` (or op_, env_) follows one backup or restore.
    const log = this.log.child({ task: task.id, step: task.activity, ...idsOf(task.input) });
    log.info({ attempt: task.attempt }, 'task started');
    try {
      const outcome = await this.outcomeOf(task, log);
      const ended = { outcome: outcome.kind, ms: Date.now() - started };
      if (outcome.kind === 'failed')
        log.warn({ ...ended, errorType: outcome.type, error: outcome.message }, 'task ended');
      else log.info(ended, 'task ended');
      await this.report(task, outcome, log);
    } finally {
      this.running--;
      if (this.running === 0) collectGarbage();
      this.slotFreed?.();
      this.slotFreed = undefined;
    }
  }

  private async outcomeOf(task: ClaimedTask, log: Logger): Promise<Outcome> {
    // The task comes from across the network: nothing is touched unless its step and ids are well formed.
    if (!isHostTaskName(task.activity))
      return failed(`this agent has no step named ${JSON.stringify(task.activity)}`, 'UnknownStep');
    const input = hostTasks[task.activity].input.safeParse(task.input);
    if (!input.success) {
      const issue = input.error.issues[0]!;
      return failed(
        `malformed ${task.activity} input: ${issue.path.join('.')} ${issue.message}`,
        'MalformedTask',
      );
    }

    const controller = new AbortController();
    let latest: unknown;
    const ctx: TaskContext = { heartbeat: (d) => (latest = d), signal: controller.signal, log };
    const beating = this.heartbeat(task, () => latest, controller, log);
    // A retry can arrive while the attempt it replaces still runs here (the API was away past the
    // heartbeat timeout): that one is being stopped, and the two must never write the same spool or
    // staging at once. The retry waits for it, beating meanwhile, then resumes from what it left.
    const key = `${task.activity}:${JSON.stringify(input.data)}`;
    const earlier = this.inFlight.get(key);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.inFlight.set(key, mine);
    try {
      await earlier;
      const step = this.steps[task.activity] as (input: unknown, ctx: TaskContext) => Promise<unknown>;
      return { kind: 'completed', result: await step(input.data, ctx) };
    } catch (err) {
      if (controller.signal.aborted) return { kind: (controller.signal.reason as Stop).outcome };
      if (err instanceof TaskFailure) return failed(err.message, err.type, err.nonRetryable);
      // Anything may be thrown, undefined included: reading its message must not fail the runner itself.
      return failed(err instanceof Error ? err.message : String(err), 'AgentError', false);
    } finally {
      beating.stop();
      done();
      if (this.inFlight.get(key) === mine) this.inFlight.delete(key);
    }
  }

  /** Sends the latest progress every few seconds until stopped; aborts the step when told to stop. */
  private heartbeat(task: ClaimedTask, latest: () => unknown, controller: AbortController, log: Logger) {
    let stopped = false;
    let wake: (() => void) | undefined;
    let unreported = 0;
    void (async () => {
      while (!stopped) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, this.heartbeatEveryMs).unref();
        });
        if (stopped) break;
        try {
          const { cancelRequested } = await this.api.taskHeartbeat(task.id, latest());
          if (cancelRequested) controller.abort(new Stop('cancelled'));
        } catch (err) {
          if (err instanceof ControlPlaneError && (err.status === 404 || err.status === 401))
            controller.abort(new Stop('gone'));
          // Otherwise the API is away for now: keep working, the next beat tries again.
          else if (!unreported++)
            log.warn({ error: (err as Error).message }, 'cannot report a task’s progress; working on');
          continue;
        }
        unreported = 0;
      }
    })();
    return {
      stop: () => {
        stopped = true;
        wake?.();
      },
    };
  }

  /**
   * Reports an outcome until the API takes it or answers that the task is gone. A result kept through
   * an API restart still lands, as long as Temporal has not timed the attempt out meanwhile.
   */
  private async report(task: ClaimedTask, outcome: Outcome, log: Logger): Promise<void> {
    if (outcome.kind === 'gone') return;
    let delayMs = this.retryDelayMs;
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      try {
        if (outcome.kind === 'completed') await this.api.completeTask(task.id, outcome.result);
        else if (outcome.kind === 'cancelled') await this.api.taskCancelled(task.id);
        else {
          const { message, type, nonRetryable } = outcome;
          await this.api.failTask(task.id, { message, type, nonRetryable });
        }
        return;
      } catch (err) {
        if (err instanceof ControlPlaneError && err.status >= 400 && err.status < 500) {
          log.warn({ error: err.message }, 'the API did not take a task’s outcome');
          return;
        }
        if (Date.now() > deadline) {
          log.error({ err }, 'gave up reporting a task’s outcome');
          return;
        }
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 5_000);
      }
    }
  }
}

/**
 * The ids a step's input names, for its log lines; never its other fields. The input is not checked
 * yet when the step starts, so only what looks like an id is taken.
 */
function idsOf(input: unknown): Record<string, string> {
  if (!input || typeof input !== 'object') return {};
  const ids: Record<string, string> = {};
  for (const key of ['operationId', 'environmentId', 'snapshotId']) {
    const value = (input as Record<string, unknown>)[key];
    if (typeof value === 'string' && value.length <= 64 && idCharacters.test(value)) ids[key] = value;
  }
  return ids;
}

function failed(message: string, type: string, nonRetryable = true): Outcome {
  return { kind: 'failed', message: message.slice(0, 4000), type, nonRetryable };
}

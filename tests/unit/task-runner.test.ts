import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ControlPlaneError,
  type ClaimedTask,
  type ControlPlaneClient,
} from '../../agent/control-plane-client.ts';
import type { HostSteps } from '../../agent/host-steps.ts';
import { TaskFailure, type TaskContext } from '../../agent/task-failure.ts';
import { TaskRunner, type TaskRunnerOptions } from '../../agent/task-runner.ts';
import { hostTaskNames } from '../../common/host-tasks.ts';
import { newId } from '../../common/ids.ts';
import { createLogger } from '../../common/log.ts';
import { capturedLogger } from '../helpers/log-lines.ts';

const quiet = createLogger('agent', { level: 'silent' });

type Failure = { message: string; type: string; nonRetryable: boolean };

/** The control plane as the runner sees it, in memory: tasks are handed out in the order they were added. */
class FakeApi implements Pick<
  ControlPlaneClient,
  'claimTask' | 'taskHeartbeat' | 'completeTask' | 'failTask' | 'taskCancelled'
> {
  claims = 0;
  readonly heartbeats: { taskId: string; details: unknown }[] = [];
  readonly completed = new Map<string, unknown>();
  readonly failed = new Map<string, Failure>();
  readonly cancelled: string[] = [];
  completeAttempts = 0;
  private readonly queue: ClaimedTask[] = [];
  private added: (() => void) | undefined;

  constructor(
    readonly answerHeartbeat: () => Promise<{ cancelRequested: boolean }> = async () => ({
      cancelRequested: false,
    }),
    /** How many completeTask calls fail as the network would, before one goes through. */
    private completeFailures = 0,
  ) {}

  add(activity: string, input: unknown): string {
    const id = newId('task');
    this.queue.push({ id, activity, input, attempt: 1 });
    this.added?.();
    return id;
  }

  get reported(): number {
    return this.completed.size + this.failed.size + this.cancelled.length;
  }

  async claimTask(_waitSeconds: number, signal: AbortSignal): Promise<ClaimedTask | undefined> {
    this.claims++;
    while (!this.queue.length) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.added = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this.queue.shift();
  }

  taskHeartbeat(taskId: string, details: unknown) {
    this.heartbeats.push({ taskId, details });
    return this.answerHeartbeat();
  }

  async completeTask(taskId: string, result: unknown) {
    this.completeAttempts++;
    if (this.completeFailures-- > 0) throw new TypeError('fetch failed');
    this.completed.set(taskId, result);
  }

  async failTask(taskId: string, failure: Failure) {
    this.failed.set(taskId, failure);
  }

  async taskCancelled(taskId: string) {
    this.cancelled.push(taskId);
  }
}

type FakeStep = (input: unknown, ctx: TaskContext) => Promise<unknown>;

/** Every host step; those not given record their call and return nothing. */
function fakeSteps(given: Record<string, FakeStep> = {}) {
  const calls: string[] = [];
  const steps = Object.fromEntries(
    hostTaskNames.map((name) => [
      name,
      (input: unknown, ctx: TaskContext) => {
        calls.push(name);
        return given[name]?.(input, ctx) ?? Promise.resolve(undefined);
      },
    ]),
  ) as unknown as HostSteps;
  return { steps, calls };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

/** Runs the runner for the test's body, then stops it and waits for its poll loop to end. */
async function running(
  api: FakeApi,
  steps: HostSteps,
  options: TaskRunnerOptions,
  body: () => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const polling = new TaskRunner(api, steps, quiet, { heartbeatEveryMs: 5, retryDelayMs: 5, ...options }).run(
    stop.signal,
  );
  try {
    await body();
  } finally {
    stop.abort();
    await polling;
  }
}

const env = () => ({ environmentId: newId('env') });
const restore = () => ({ operationId: newId('op'), environmentId: newId('env') });
const untilAborted = (ctx: TaskContext) =>
  new Promise<never>((_, reject) =>
    ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
  );

describe('task runner', () => {
  it('fails a task whose input is not of its step’s shape, as permanent, without running it', async () => {
    const api = new FakeApi();
    const { steps, calls } = fakeSteps();
    const tasks = [
      ['discardRestore', { ...restore(), environmentId: '../../..' }, 'environmentId'],
      ['discardRestore', { operationId: '../../..', environmentId: newId('env') }, 'operationId'],
      ['startEnvironment', {}, 'environmentId'],
      ['startEnvironment', { environmentId: newId('op') }, 'environmentId'],
      ['startEnvironment', { ...env(), extra: '/etc' }, ''],
      ['stopEnvironment', null, ''],
      ['swapIn', 'op_abcdefghijklmnop', ''],
    ] as const;
    await running(api, steps, { maxConcurrent: 1 }, async () => {
      const ids = tasks.map(([activity, input]) => api.add(activity, input));
      await until(() => api.failed.size === ids.length, 'every task is reported');
      ids.forEach((id, i) => {
        const [activity, , field] = tasks[i]!;
        const failure = api.failed.get(id)!;
        assert.equal(failure.type, 'MalformedTask', activity);
        assert.equal(failure.nonRetryable, true);
        assert.match(failure.message, new RegExp(`^malformed ${activity} input: ${field}`));
      });
    });
    assert.deepEqual(calls, []);
    assert.equal(api.heartbeats.length, 0);
  });

  it('fails a task of a step it does not have, as permanent', async () => {
    const api = new FakeApi();
    const { steps, calls } = fakeSteps();
    await running(api, steps, {}, async () => {
      const ids = ['removeEverything', '__proto__', 'constructor', 'toString'].map((name) =>
        api.add(name, env()),
      );
      await until(() => api.failed.size === ids.length, 'every task is reported');
      for (const id of ids) {
        assert.equal(api.failed.get(id)!.type, 'UnknownStep');
        assert.equal(api.failed.get(id)!.nonRetryable, true);
      }
    });
    assert.deepEqual(calls, []);
  });

  it('runs a well-formed task with its parsed input and reports the result', async () => {
    const api = new FakeApi();
    const input = restore();
    const { steps } = fakeSteps({
      verifySnapshotOnHost: async (got) => {
        assert.deepEqual(got, input);
        return { entries: 3, bytes: 42 };
      },
    });
    await running(api, steps, {}, async () => {
      const id = api.add('verifySnapshotOnHost', input);
      await until(() => api.reported === 1, 'the task is reported');
      assert.deepEqual(api.completed.get(id), { entries: 3, bytes: 42 });
    });
  });

  it('aborts a step whose cancellation was requested, and reports it cancelled', async () => {
    const api = new FakeApi(async () => ({ cancelRequested: true }));
    const { steps } = fakeSteps({
      fetchAndUnpack: (_input, ctx) => {
        ctx.heartbeat({ entriesDone: 7 });
        return untilAborted(ctx);
      },
    });
    await running(api, steps, {}, async () => {
      const id = api.add('fetchAndUnpack', restore());
      await until(() => api.reported === 1, 'the task is reported');
      assert.deepEqual(api.cancelled, [id]);
      assert.deepEqual(api.heartbeats[0], { taskId: id, details: { entriesDone: 7 } });
    });
    assert.equal(api.completeAttempts, 0);
    assert.equal(api.failed.size, 0);
  });

  it('aborts a step the API says is gone, and reports nothing', async () => {
    const api = new FakeApi(async () => {
      throw new ControlPlaneError(404, 'task not found');
    });
    let aborted = false;
    const { steps } = fakeSteps({
      fetchAndUnpack: (_input, ctx) =>
        untilAborted(ctx).catch(() => {
          aborted = true;
          throw new TaskFailure('stopped', 'DiskFull', true);
        }),
    });
    // One slot: the runner polls again once it is done with the task, outcome and all.
    await running(api, steps, { maxConcurrent: 1 }, async () => {
      api.add('fetchAndUnpack', restore());
      await until(() => api.claims === 2, 'the runner is done with the task');
    });
    assert.ok(aborted);
    assert.equal(api.reported, 0);
    assert.equal(api.completeAttempts, 0);
  });

  it('keeps working while heartbeats fail on the network', async () => {
    const api = new FakeApi(async () => {
      throw new TypeError('fetch failed');
    });
    const { steps } = fakeSteps({
      waitHealthy: async () => {
        await until(() => api.heartbeats.length >= 3, 'a few heartbeats were tried');
        return { healthyAt: 1 };
      },
    });
    await running(api, steps, {}, async () => {
      const id = api.add('waitHealthy', env());
      await until(() => api.reported === 1, 'the task is reported');
      assert.deepEqual(api.completed.get(id), { healthyAt: 1 });
    });
  });

  it('reports a result again until the API takes it', async () => {
    const api = new FakeApi(undefined, 2);
    const { steps } = fakeSteps({ waitHealthy: async () => ({ healthyAt: 1 }) });
    await running(api, steps, {}, async () => {
      const id = api.add('waitHealthy', env());
      await until(() => api.reported === 1, 'the task is reported');
      assert.deepEqual(api.completed.get(id), { healthyAt: 1 });
    });
    assert.equal(api.completeAttempts, 3);
  });

  it('reports a TaskFailure with its type, anything else as a retryable AgentError', async () => {
    const api = new FakeApi();
    const { steps } = fakeSteps({
      captureSnapshot: async () => {
        throw new TaskFailure('the receiver is full', 'StorageFull', true);
      },
      startEnvironment: async () => {
        throw new Error('connect ECONNREFUSED');
      },
      stopEnvironment: async () => {
        throw undefined;
      },
    });
    await running(api, steps, {}, async () => {
      const full = api.add('captureSnapshot', {
        snapshotId: newId('snap'),
        environmentId: newId('env'),
        teamPublicKey: 'ab'.repeat(32),
      });
      const refused = api.add('startEnvironment', env());
      const nothing = api.add('stopEnvironment', env());
      await until(() => api.reported === 3, 'every task is reported');
      assert.deepEqual(api.failed.get(full), {
        message: 'the receiver is full',
        type: 'StorageFull',
        nonRetryable: true,
      });
      assert.deepEqual(api.failed.get(refused), {
        message: 'connect ECONNREFUSED',
        type: 'AgentError',
        nonRetryable: false,
      });
      assert.deepEqual(api.failed.get(nothing), {
        message: 'undefined',
        type: 'AgentError',
        nonRetryable: false,
      });
    });
  });

  it('runs a retry of a step only once the attempt it replaces has ended here', async () => {
    const api = new FakeApi();
    const input = restore();
    let live = 0;
    let most = 0;
    const finish: (() => void)[] = [];
    const { steps } = fakeSteps({
      fetchAndUnpack: () => {
        most = Math.max(most, ++live);
        return new Promise((resolve) =>
          finish.push(() => {
            live--;
            resolve({ bytes: 1, resumedAfterEntries: 0, entries: 1, unpackedBytes: 1 });
          }),
        );
      },
    });
    await running(api, steps, {}, async () => {
      api.add('fetchAndUnpack', input);
      await until(() => finish.length === 1, 'the first attempt runs');
      const retry = api.add('fetchAndUnpack', input);
      await until(() => api.claims === 3, 'the retry is taken');
      await sleep(30);
      assert.equal(finish.length, 1, 'the retry waits for the attempt still running');
      assert.ok(
        api.heartbeats.some((h) => h.taskId === retry),
        'and beats while it waits',
      );
      finish[0]!();
      await until(() => finish.length === 2, 'the retry runs');
      finish[1]!();
      await until(() => api.reported === 2, 'both are reported');
    });
    assert.equal(most, 1);
  });

  it('claims no task while every slot is taken', async () => {
    const api = new FakeApi();
    const started: string[] = [];
    const release = new Map<string, () => void>();
    let now = 0;
    let most = 0;
    const { steps } = fakeSteps({
      waitHealthy: (input) => {
        const { environmentId } = input as { environmentId: string };
        started.push(environmentId);
        most = Math.max(most, ++now);
        return new Promise((resolve) =>
          release.set(environmentId, () => {
            now--;
            resolve({ healthyAt: 1 });
          }),
        );
      },
    });
    await running(api, steps, { maxConcurrent: 2 }, async () => {
      const inputs = [env(), env(), env()];
      for (const input of inputs) api.add('waitHealthy', input);
      await until(() => started.length === 2, 'two tasks run');
      await sleep(50);
      assert.equal(api.claims, 2, 'no third poll while both slots are taken');
      assert.equal(started.length, 2);

      release.get(inputs[0]!.environmentId)!();
      await until(() => started.length === 3, 'the third task runs');
      assert.equal(api.claims, 3);
      release.get(inputs[1]!.environmentId)!();
      release.get(inputs[2]!.environmentId)!();
      await until(() => api.reported === 3, 'every task is reported');
    });
    assert.equal(most, 2);
  });

  it('logs each task’s start and end, its own lines between, all with its ids and none of its other input', async () => {
    const api = new FakeApi();
    const { log, text, lines } = capturedLogger('agent', 'info');
    const backup = { snapshotId: newId('snap'), environmentId: newId('env'), teamPublicKey: 'ab'.repeat(32) };
    const { steps } = fakeSteps({
      captureSnapshot: async (_input, ctx) => ctx.log.info({ bytes: 5 }, 'uploaded'),
      fetchAndUnpack: () => Promise.reject(new TaskFailure('the disk filled up', 'DiskFull', true)),
    });
    const stop = new AbortController();
    const polling = new TaskRunner(api, steps, log, { heartbeatEveryMs: 5 }).run(stop.signal);
    const backupTask = api.add('captureSnapshot', backup);
    const restoreRef = restore();
    const restoreTask = api.add('fetchAndUnpack', restoreRef);
    await until(() => api.reported === 2, 'both tasks are reported');
    stop.abort();
    await polling;

    const backupLines = lines().filter((l) => l.task === backupTask);
    assert.deepEqual(
      backupLines.map((l) => l.msg),
      ['task started', 'uploaded', 'task ended'],
    );
    for (const line of backupLines) {
      assert.equal(line.step, 'captureSnapshot');
      assert.equal(line.snapshotId, backup.snapshotId);
      assert.equal(line.environmentId, backup.environmentId);
    }
    assert.equal(backupLines[0]!.attempt, 1);
    assert.equal(backupLines[2]!.outcome, 'completed');
    assert.equal(typeof backupLines[2]!.ms, 'number');

    const restoreEnd = lines().find((l) => l.task === restoreTask && l.msg === 'task ended')!;
    assert.equal(restoreEnd.operationId, restoreRef.operationId);
    assert.equal(restoreEnd.level, 'warn');
    assert.equal(restoreEnd.outcome, 'failed');
    assert.equal(restoreEnd.errorType, 'DiskFull');
    assert.equal(restoreEnd.error, 'the disk filled up');
    assert.ok(!text().includes(backup.teamPublicKey), 'only the ids of an input are logged');
  });

  it('stops polling when told to, even with every slot taken', async () => {
    const api = new FakeApi();
    const { steps, calls } = fakeSteps({ waitHealthy: () => new Promise(() => undefined) });
    const stop = new AbortController();
    const polling = new TaskRunner(api, steps, quiet, { maxConcurrent: 1 }).run(stop.signal);
    api.add('waitHealthy', env());
    await until(() => calls.length === 1, 'the task runs');
    stop.abort();
    const timeout = new AbortController();
    await Promise.race([
      polling,
      sleep(2_000, undefined, { signal: timeout.signal }).then(() => assert.fail('run() did not return')),
    ]);
    timeout.abort();
  });
});

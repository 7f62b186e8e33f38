import { createRoute, z } from '@hono/zod-openapi';
import {
  ActivityCancelledError,
  ActivityNotFoundError,
  ActivityPausedError,
  ActivityResetError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DomainError, notFound } from '../common/errors.ts';
import { hostTasks, isHostTaskName, transferOf } from '../common/host-tasks.ts';
import {
  claimAgentTask,
  claimedTaskOfServer,
  deleteAgentTask,
  releaseAgentTask,
  type ClaimedTask,
} from '../db/agent-tasks.data.ts';
import type { TaskSignals } from '../db/agent-task-signals.ts';
import type { Db } from '../db/database.ts';
import { recordTransfer } from '../db/operations.data.ts';
import type { Transfer } from '../common/operations.ts';
import { transferSignalName } from '../common/workflow-contracts.ts';
import type { AgentEnv } from './auth.ts';
import { bodyErrors, errorResponses, idParam, jsonBody, jsonResponse, newRouter } from './router.ts';

// The workflow's progress query shows the figures too, from a signal at most this often per step (a
// signal is a history event: every heartbeat would make a long restore's history large).
const signalEveryMs = 10_000;

export interface AgentTasksDeps {
  db: Db;
  temporal: Client;
  taskSignals: TaskSignals;
  agentStaleAfterMs: number;
}

// Heartbeat details are progress figures; a few KiB is plenty, and all of it lands in Temporal's history.
const maxDetailsBytes = 16 * 1024;
const maxPollSeconds = 30;

const details = z.unknown().refine((d) => d === undefined || JSON.stringify(d).length <= maxDetailsBytes, {
  message: `must be JSON of at most ${maxDetailsBytes} bytes`,
});

const taskSchema = z
  .object({
    id: z.string(),
    activity: z.string().openapi({ description: 'The host step, as named in the Temporal UI' }),
    input: z.unknown(),
    attempt: z.number(),
  })
  .openapi('AgentTask');

const gone = (id: string) => notFound('task', id);

/**
 * Temporal answers for the agent's task with the token kept here: an activity Temporal no longer
 * runs (timed out, retried, its workflow ended) leaves a row that is dropped and reported as gone.
 */
async function relay<T>(db: Db, task: { id: string }, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ActivityNotFoundError) {
      await deleteAgentTask(db, task.id);
      throw gone(task.id);
    }
    if (
      err instanceof ActivityCancelledError ||
      err instanceof ActivityPausedError ||
      err instanceof ActivityResetError
    )
      throw err;
    throw new DomainError(
      'unavailable',
      'temporal_unavailable',
      'the control plane cannot reach its workflow engine; keep the result and report again',
    );
  }
}

/**
 * How agents take and answer host steps (asynchronous activity completion): a long poll hands out
 * the server's oldest waiting task, and heartbeats, results and failures are relayed to Temporal with
 * the task token, which never leaves the control plane. Every call concerns a task of the calling
 * server, or it is not found.
 */
export function agentTasksRoutes({ db, temporal, taskSignals, agentStaleAfterMs }: AgentTasksDeps) {
  /** Hands the running step's figures to its workflow (best effort: the API has them already). */
  async function signalTransfer(
    workflowId: string,
    { transfer, previousAt }: { transfer: Transfer; previousAt?: string },
  ) {
    // Once a window of signalEveryMs: the first report, and the first in each later window.
    const window = (at: string) => Math.floor(Date.parse(at) / signalEveryMs);
    if (previousAt && window(transfer.at) === window(previousAt)) return;
    await temporal.workflow
      .getHandle(workflowId)
      .signal<[Transfer]>(transferSignalName, transfer)
      .catch(() => undefined);
  }

  // A held poll must end well within the stale window: the agent's next poll is what shows it connected.
  const holdLimitMs = Math.min(maxPollSeconds * 1000, Math.floor(agentStaleAfterMs / 3));

  /** A claimed task whose activity Temporal still runs: the claim is confirmed by a first heartbeat. */
  async function live(task: ClaimedTask): Promise<boolean> {
    try {
      await temporal.activity.heartbeat(task.task_token);
      return true;
    } catch (err) {
      if (err instanceof ActivityNotFoundError) {
        await deleteAgentTask(db, task.id);
        return false;
      }
      // Cancelled before it started: nothing ran, so it is cancelled as it stands.
      if (err instanceof ActivityCancelledError) {
        await relay(db, task, () => temporal.activity.reportCancellation(task.task_token));
        await deleteAgentTask(db, task.id);
        return false;
      }
      // Temporal away: the task waits for the next poll rather than going to an agent unconfirmed.
      await releaseAgentTask(db, task.id);
      return relay(db, task, () => Promise.reject(err));
    }
  }

  async function claim(serverId: string): Promise<ClaimedTask | undefined> {
    for (;;) {
      const task = await claimAgentTask(db, serverId);
      if (!task || (await live(task))) return task;
    }
  }

  async function claimed(serverId: string, id: string) {
    const task = await claimedTaskOfServer(db, serverId, id);
    if (!task || !isHostTaskName(task.activity)) throw gone(id);
    return { ...task, activity: task.activity };
  }

  return newRouter<AgentEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: '/claim',
        operationId: 'claimTask',
        tags: ['Agent tasks'],
        summary: 'Long poll: the next host step for this server, held until one is waiting or the wait ends',
        request: {
          body: jsonBody(
            z.strictObject({ waitSeconds: z.number().int().min(0).max(maxPollSeconds).default(20) }),
          ),
        },
        responses: {
          200: jsonResponse(z.object({ task: taskSchema }), 'A task, now this agent’s'),
          204: { description: 'Nothing to do within the wait' },
          ...errorResponses(...bodyErrors, 503),
        },
      }),
      async (c) => {
        const serverId = c.get('server').id;
        const aborted = c.req.raw.signal;
        const deadline = Date.now() + Math.min(c.req.valid('json').waitSeconds * 1000, holdLimitMs);
        for (;;) {
          // Listen before looking, so a task enqueued in between wakes this poll.
          const wake = taskSignals.next(serverId, Math.max(0, deadline - Date.now()), aborted);
          const task = aborted.aborted ? undefined : await claim(serverId);
          if (task) {
            wake.cancel();
            const { id, activity, input, attempt } = task;
            return c.json({ task: { id, activity, input, attempt } }, 200);
          }
          if (aborted.aborted || Date.now() >= deadline) {
            wake.cancel();
            return c.body(null, 204);
          }
          await wake.done;
        }
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/heartbeat',
        operationId: 'heartbeatTask',
        tags: ['Agent tasks'],
        summary: 'Progress of a running task; answers whether its cancellation was requested',
        request: {
          params: idParam('task_...'),
          body: jsonBody(z.strictObject({ details: details.optional() })),
        },
        responses: {
          200: jsonResponse(z.object({ cancelRequested: z.boolean() }), 'Relayed'),
          ...errorResponses(...bodyErrors, 404, 503),
        },
      }),
      async (c) => {
        const task = await claimed(c.get('server').id, c.req.valid('param').id);
        const { details } = c.req.valid('json');
        try {
          await relay(db, task, () => temporal.activity.heartbeat(task.task_token, details));
          // The operation shows the bytes moved so far, its rate and the time left, as the step runs.
          const figures = transferOf(task.activity, details);
          const recorded = figures && (await recordTransfer(db, task.workflow_id, task.activity, figures));
          if (recorded) await signalTransfer(task.workflow_id, recorded);
          return c.json({ cancelRequested: false }, 200);
        } catch (err) {
          if (err instanceof DomainError) throw err;
          return c.json({ cancelRequested: true }, 200);
        }
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/complete',
        operationId: 'completeTask',
        tags: ['Agent tasks'],
        summary: 'The result of a task; checked against its step’s shape before it reaches the workflow',
        request: {
          params: idParam('task_...'),
          body: jsonBody(z.strictObject({ result: z.unknown().optional() })),
        },
        responses: { 204: { description: 'Completed' }, ...errorResponses(...bodyErrors, 404, 503) },
      }),
      async (c) => {
        const task = await claimed(c.get('server').id, c.req.valid('param').id);
        const parsed = hostTasks[task.activity].result.safeParse(c.req.valid('json').result);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          const problem = `result.${issue.path.join('.')}: ${issue.message}`;
          // A result that is not of its step's shape is an agent fault no retry mends.
          await relay(db, task, () =>
            temporal.activity.fail(
              task.task_token,
              ApplicationFailure.nonRetryable(
                `the agent answered ${task.activity} with a malformed result (${problem})`,
                'MalformedResult',
              ),
            ),
          );
          await deleteAgentTask(db, task.id);
          throw new DomainError('invalid', 'validation_failed', problem, 'result');
        }
        await relay(db, task, () => temporal.activity.complete(task.task_token, parsed.data));
        await deleteAgentTask(db, task.id);
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/fail',
        operationId: 'failTask',
        tags: ['Agent tasks'],
        summary: 'A task failed on the host; non-retryable failures end the step, others are retried',
        request: {
          params: idParam('task_...'),
          body: jsonBody(
            z.strictObject({
              message: z.string().max(4000),
              type: z
                .string()
                .regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, 'must be an error type name')
                .default('AgentError'),
              nonRetryable: z.boolean().default(false),
            }),
          ),
        },
        responses: { 204: { description: 'Failed' }, ...errorResponses(...bodyErrors, 404, 503) },
      }),
      async (c) => {
        const task = await claimed(c.get('server').id, c.req.valid('param').id);
        const { message, type, nonRetryable } = c.req.valid('json');
        await relay(db, task, () =>
          temporal.activity.fail(task.task_token, ApplicationFailure.create({ message, type, nonRetryable })),
        );
        await deleteAgentTask(db, task.id);
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/cancelled',
        operationId: 'reportTaskCancelled',
        tags: ['Agent tasks'],
        summary: 'The agent stopped a task whose cancellation was requested',
        request: { params: idParam('task_...') },
        responses: { 204: { description: 'Reported' }, ...errorResponses(404, 422, 503) },
      }),
      async (c) => {
        const task = await claimed(c.get('server').id, c.req.valid('param').id);
        await relay(db, task, () => temporal.activity.reportCancellation(task.task_token));
        await deleteAgentTask(db, task.id);
        return c.body(null, 204);
      },
    );
}

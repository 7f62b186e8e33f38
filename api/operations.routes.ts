import { createRoute, z } from '@hono/zod-openapi';
import type { Client } from '@temporalio/client';
import { streamSSE } from 'hono/streaming';
import { DomainError } from '../common/errors.ts';
import { activeStatuses } from '../common/operations.ts';
import type { Db } from '../db/database.ts';
import { getOperation, operationsPage } from '../db/operations.data.ts';
import { getRestore } from '../db/restores.data.ts';
import { tokenValid } from '../db/teams.data.ts';
import { presentOperation } from './operation-starter.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import { errorResponses, errorSchema, idParam, idString, jsonResponse, newRouter } from './router.ts';

export const operationSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['deploy', 'stop', 'backup', 'restore', 'verify']),
    status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']),
    environmentId: z.string(),
    serverId: z.string(),
    workflowId: z
      .string()
      .openapi({ description: 'Find it in the Temporal UI or with `temporal workflow describe`' }),
    steps: z.array(
      z.object({
        name: z.string(),
        status: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped']),
        startedAt: z.string().optional(),
        endedAt: z.string().optional(),
        bytes: z.number().optional(),
        bytesPerSecond: z.number().optional(),
        note: z.string().optional(),
        error: z.string().optional(),
      }),
    ),
    transfer: z
      .object({
        stepName: z.string().openapi({ description: 'The running step of `steps`' }),
        step: z.string().openapi({ description: 'The host step on the server, as the Temporal UI names it' }),
        bytes: z.number(),
        totalBytes: z
          .number()
          .nullable()
          .openapi({ description: 'Null until known (a backup’s once captured)' }),
        bytesPerSecond: z.number().nullable(),
        etaSeconds: z.number().nullable(),
        at: z.string().openapi({ description: 'When the agent reported it (every 2 s while the step runs)' }),
      })
      .nullable()
      .openapi({ description: 'Live: the bytes the running step has moved so far; null when it moves none' }),
    error: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    temporalUiUrl: z
      .string()
      .optional()
      .openapi({
        description:
          'The workflow’s page in the Temporal Web UI; given by GET /operations and GET /operations/{id} when ' +
          'the API knows the UI’s address (STRACKT_TEMPORAL_UI_URL)',
      }),
    restore: z
      .object({
        snapshotId: z.string(),
        targetServerId: z.string(),
        previousServerId: z.string().nullable(),
        downtimeMs: z
          .number()
          .nullable()
          .openapi({ description: 'Services stopped to healthy again on the target' }),
      })
      .optional(),
  })
  .openapi('Operation');

const filterQuery = pageQuery.extend({
  kind: operationSchema.shape.kind.optional(),
  status: operationSchema.shape.status.optional(),
  environmentId: idString.optional(),
  serverId: idString.optional(),
  since: z.iso.datetime({ offset: true }).optional().openapi({
    description: 'RFC 3339: only operations made at or after it',
    example: '2026-12-01T00:00:00Z',
  }),
});

// How often the event stream looks for changes: the database row, mirrored by the workflow.
const eventPollMs = 500;
// Every 2 s a stream asks whether its token still stands.
const tokenCheckEvery = 4;
/** Each stream holds a connection and polls the database: a token may hold this many at once. */
export const maxStreamsPerToken = 10;

export function operationsRoutes({
  db,
  temporal,
  temporalUiUrl,
}: {
  db: Db;
  temporal: Client;
  temporalUiUrl?: string | undefined;
}) {
  // Open event streams per token in this process.
  const streamsOf = new Map<string, number>();
  // The UI's page for a workflow id redirects to its latest run (temporalio/ui's workflows/[workflow] route).
  const workflowPage = (workflowId: string) =>
    `${temporalUiUrl}/namespaces/${encodeURIComponent(temporal.options.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  const linked = <T extends { workflowId: string }>(op: T) =>
    temporalUiUrl ? { ...op, temporalUiUrl: workflowPage(op.workflowId) } : op;
  async function detailed(teamId: string, id: string) {
    const op = await getOperation(db, teamId, id);
    const restore = op.kind === 'restore' ? await getRestore(db, op.id) : undefined;
    return {
      ...linked(presentOperation(op)),
      ...(restore && {
        restore: {
          snapshotId: restore.snapshot_id,
          targetServerId: restore.target_server_id,
          previousServerId: restore.previous_server_id,
          downtimeMs: restore.downtime_ms,
        },
      }),
    };
  }

  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        operationId: 'listOperations',
        tags: ['Operations'],
        summary: "The team's operations, newest first; each filter given narrows them",
        request: { query: filterQuery },
        responses: {
          200: jsonResponse(pageSchema('operations', operationSchema), 'Operations'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const { limit, cursor, since, ...filter } = c.req.valid('query');
        const page = await operationsPage(
          db,
          c.get('teamId'),
          { ...filter, ...(since && { since: new Date(since) }) },
          pageRequest({ limit, cursor }),
        );
        return c.json(
          pageBody(c, 'operations', page, limit, (op) => linked(presentOperation(op))),
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getOperation',
        tags: ['Operations'],
        summary: 'An operation (deploy, stop, backup, restore) with its steps',
        request: { params: idParam('op_...') },
        responses: { 200: jsonResponse(operationSchema, 'Operation'), ...errorResponses(404, 422) },
      }),
      async (c) => c.json(await detailed(c.get('teamId'), c.req.valid('param').id), 200),
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/events',
        operationId: 'streamOperationEvents',
        tags: ['Operations'],
        summary: 'The operation as server-sent events: a `progress` event at every change, until it ends',
        request: { params: idParam('op_...') },
        responses: {
          200: {
            description: 'Each event’s data is the operation, as GET /operations/{id} gives it',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...errorResponses(404, 422, 429),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const tokenId = c.get('tokenId');
        const { id } = c.req.valid('param');
        let op = await detailed(teamId, id); // a 404 before the stream starts
        const open = streamsOf.get(tokenId) ?? 0;
        if (open >= maxStreamsPerToken)
          throw new DomainError(
            'too_many',
            'too_many_streams',
            `this token has ${open} event streams open (at most ${maxStreamsPerToken} per API process): close one first`,
          );
        streamsOf.set(tokenId, open + 1);
        return streamSSE(c, async (stream) => {
          try {
            let sent = '';
            for (let n = 1; !stream.aborted; n++) {
              const data = JSON.stringify(op);
              if (data !== sent) {
                await stream.writeSSE({ event: 'progress', data, id: String(n) });
                sent = data;
              }
              if (!activeStatuses.includes(op.status)) break;
              await stream.sleep(eventPollMs);
              // A revoked token's stream ends: it would otherwise outlive the token by the operation's length.
              if (n % tokenCheckEvery === 0 && !(await tokenValid(db, tokenId))) break;
              op = await detailed(teamId, id);
            }
          } finally {
            const left = (streamsOf.get(tokenId) ?? 1) - 1;
            if (left) streamsOf.set(tokenId, left);
            else streamsOf.delete(tokenId);
          }
        }) as never;
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/cancel',
        operationId: 'cancelOperation',
        tags: ['Operations'],
        summary: 'Cancel a running operation; a restore puts the previous data and services back first',
        request: { params: idParam('op_...') },
        responses: {
          202: jsonResponse(operationSchema, 'Cancellation requested'),
          409: jsonResponse(errorSchema, 'The operation has already ended'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const op = await detailed(c.get('teamId'), c.req.valid('param').id);
        if (!activeStatuses.includes(op.status)) {
          throw new DomainError(
            'conflict',
            'operation_finished',
            `operation ${op.id} has already ${op.status}`,
          );
        }
        await temporal.workflow.getHandle(op.workflowId).cancel();
        return c.json(op, 202);
      },
    );
}

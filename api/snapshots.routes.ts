import { createRoute, z } from '@hono/zod-openapi';
import type { Client } from '@temporalio/client';
import { DomainError, invalid, notFound } from '../common/errors.ts';
import { startPrune } from '../common/workflow-starts.ts';
import type { Db } from '../db/database.ts';
import { getEnvironment } from '../db/environments.data.ts';
import { markForDeletion } from '../db/prune.data.ts';
import { getServer } from '../db/servers.data.ts';
import { getSnapshot, setPinned } from '../db/snapshots.data.ts';
import { requireEnrolledAgent } from './agent-connected.ts';
import { operationSchema } from './operations.routes.ts';
import { operationStarted, startOperation } from './operation-starter.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  idParam,
  idString,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';
import {
  presentSnapshot,
  presentSnapshotDetail,
  snapshotDetailSchema,
  snapshotSchema,
} from './snapshots.present.ts';

export interface SnapshotsDeps {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
  agentStaleAfterMs: number;
}

/** One snapshot of the team's: show it, pin it, verify it, delete it. */
export function snapshotsRoutes(deps: SnapshotsDeps) {
  const { db } = deps;
  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getSnapshot',
        tags: ['Snapshots'],
        summary: 'A complete snapshot of the team’s, with its sizes and its volumes',
        request: { params: idParam('snap_...') },
        responses: { 200: jsonResponse(snapshotDetailSchema, 'Snapshot'), ...errorResponses(404, 422) },
      }),
      async (c) =>
        c.json(presentSnapshotDetail(await getSnapshot(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'patch',
        path: '/{id}',
        operationId: 'pinSnapshot',
        tags: ['Snapshots'],
        summary: 'Pin or unpin a snapshot (a pinned one is never pruned)',
        request: { params: idParam('snap_...'), body: jsonBody(z.strictObject({ pinned: z.boolean() })) },
        responses: { 200: jsonResponse(snapshotSchema, 'Snapshot'), ...errorResponses(...bodyErrors, 404) },
      }),
      async (c) => {
        const id = c.req.valid('param').id;
        const row = await setPinned(db, c.get('teamId'), id, c.req.valid('json').pinned);
        if (!row) throw notFound('snapshot', id);
        return c.json(presentSnapshot(row), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/verify',
        operationId: 'verifySnapshot',
        tags: ['Snapshots'],
        summary: 'Verify a snapshot: stream it from its destination and check all of it, writing nothing',
        description:
          'A tracked operation (kind verify) on a server of the team, by default the one the environment ' +
          'runs on: its agent streams the snapshot from the destination, authenticates every chunk and ' +
          'checks every file against the manifest. The result is recorded on the snapshot (lastVerified); ' +
          'one that fails is notified (snapshot.verification_failed) and never the default restore point. ' +
          'It may run beside a backup or restore of the environment.',
        request: {
          params: idParam('snap_...'),
          body: jsonBody(
            z.strictObject({
              serverId: idString.optional(),
              subset: z.number().int().min(1).max(100).optional().openapi({
                description:
                  'Format 2 only: the percentage of the snapshot’s packs read, chosen at random (all of them when absent)',
              }),
            }),
          ),
        },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          ...errorResponses(...bodyErrors, 404, 409, 503),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const snapshot = await getSnapshot(db, teamId, c.req.valid('param').id);
        const environment = await getEnvironment(db, teamId, snapshot.environment_id);
        const { serverId, subset } = c.req.valid('json');
        // Format 1 is one stream, read whole or not at all.
        if (subset !== undefined && snapshot.format_version !== 2)
          throw invalid('subset', 'only a format-2 snapshot is verified in part');
        const server = await getServer(db, teamId, serverId ?? environment.server_id);
        await requireEnrolledAgent(deps, server);
        const op = await startOperation(
          deps,
          { teamId, environmentId: snapshot.environment_id, serverId: server.id, kind: 'verify' },
          { snapshotId: snapshot.id, ...(subset !== undefined && { subset }) },
        );
        return operationStarted(c, op);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteSnapshot',
        tags: ['Snapshots'],
        summary: 'Delete a snapshot: no longer listed at once, its objects removed by a prune workflow',
        request: { params: idParam('snap_...') },
        responses: {
          202: jsonResponse(z.object({ workflowId: z.string() }), 'Being deleted'),
          409: jsonResponse(errorSchema, 'Pinned, or being restored or verified'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const id = c.req.valid('param').id;
        const { snapshot, refusal } = await markForDeletion(db, teamId, id);
        if (refusal === 'not_found' || !snapshot) throw notFound('snapshot', id);
        if (refusal === 'pinned')
          throw new DomainError('conflict', 'pinned', `snapshot ${id} is pinned: unpin it first`);
        if (refusal === 'in_use')
          throw new DomainError(
            'conflict',
            'in_use',
            `snapshot ${id} is being restored or verified right now`,
          );
        // Asked again while marked, another prune of it starts: pruning a snapshot twice is harmless.
        const { workflowId } = await startPrune(deps, {
          teamId,
          environmentId: snapshot.environment_id,
          snapshotId: id,
        });
        return c.json({ workflowId }, 202);
      },
    );
}

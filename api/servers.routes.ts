import { createRoute, z } from '@hono/zod-openapi';
import type { Client } from '@temporalio/client';
import { nameSchema } from '../common/environment-spec.ts';
import { agentTaskQueue } from '../common/task-queues.ts';
import type { Db } from '../db/database.ts';
import { createServer, deleteServer, getServer, listServers, recordLastSeen } from '../db/servers.data.ts';
import type { Server } from '../db/tables/server.table.ts';
import { agentPresence } from '../common/agent-presence.ts';
import { errorResponses, idParam, jsonBody, jsonResponse, newRouter } from './router.ts';

const serverSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    connected: z.boolean(),
    lastSeenAt: z.string().nullable(),
    enrolledAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Server');

const createdServerSchema = z
  .object({
    server: serverSchema,
    agent: z.object({
      token: z
        .string()
        .openapi({ description: 'Shown once. The agent presents it to enrol; store it on the server only.' }),
      taskQueue: z.string(),
    }),
  })
  .openapi('CreatedServer');

export interface ServersDeps {
  db: Db;
  temporal: Client;
  agentStaleAfterMs: number;
}

export function serversRoutes({ db, temporal, agentStaleAfterMs }: ServersDeps) {
  async function present(server: Server): Promise<z.infer<typeof serverSchema>> {
    const presence = await agentPresence(temporal, server.id, agentStaleAfterMs);
    if (presence.lastSeenAt) await recordLastSeen(db, server.id, new Date(presence.lastSeenAt));
    const lastSeen = presence.lastSeenAt ?? server.last_seen_at?.toISOString() ?? null;
    return {
      id: server.id,
      name: server.name,
      connected: presence.connected,
      lastSeenAt: lastSeen,
      enrolledAt: server.enrolled_at?.toISOString() ?? null,
      createdAt: server.created_at.toISOString(),
    };
  }

  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        summary: "List the team's servers with their agents' connection state",
        responses: {
          200: jsonResponse(z.object({ servers: z.array(serverSchema) }), 'Servers'),
          ...errorResponses,
        },
      }),
      async (c) => {
        const servers = await listServers(db, c.get('teamId'));
        return c.json({ servers: await Promise.all(servers.map(present)) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        summary: 'Register a server and issue its agent token',
        request: { body: jsonBody(z.strictObject({ name: nameSchema })) },
        responses: {
          201: jsonResponse(createdServerSchema, 'Created; the agent token is shown only now'),
          ...errorResponses,
        },
      }),
      async (c) => {
        const { server, agentToken } = await createServer(db, c.get('teamId'), c.req.valid('json').name);
        return c.json(
          {
            server: await present(server),
            agent: { token: agentToken, taskQueue: agentTaskQueue(server.id) },
          },
          201,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        summary: 'One server',
        request: { params: idParam('srv_...') },
        responses: { 200: jsonResponse(serverSchema, 'Server'), ...errorResponses },
      }),
      async (c) => c.json(await present(await getServer(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        summary: 'Remove a server that hosts no environment; its agent token stops working',
        request: { params: idParam('srv_...') },
        responses: { 204: { description: 'Deleted' }, ...errorResponses },
      }),
      async (c) => {
        await deleteServer(db, c.get('teamId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
    );
}

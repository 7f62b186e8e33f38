import { createRoute, z } from '@hono/zod-openapi';
import { nameSchema } from '../common/environment-spec.ts';
import type { Db } from '../db/database.ts';
import { createServer, deleteServer, getServer, rotateAgentToken, serversPage } from '../db/servers.data.ts';
import type { Server } from '../db/tables/server.table.ts';
import { presenceOf } from '../common/agent-presence.ts';
import {
  bodyErrors,
  errorResponses,
  holdsSecret,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';

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
    }),
  })
  .openapi('CreatedServer');

export interface ServersDeps {
  db: Db;
  agentStaleAfterMs: number;
}

export function serversRoutes({ db, agentStaleAfterMs }: ServersDeps) {
  function present(server: Server): z.infer<typeof serverSchema> {
    const presence = presenceOf(server.last_seen_at, agentStaleAfterMs);
    return {
      id: server.id,
      name: server.name,
      connected: presence.connected,
      lastSeenAt: presence.lastSeenAt,
      enrolledAt: server.enrolled_at?.toISOString() ?? null,
      createdAt: server.created_at.toISOString(),
    };
  }

  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        operationId: 'listServers',
        tags: ['Servers'],
        summary: "List the team's servers with their agents' connection state, newest first",
        request: { query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('servers', serverSchema), 'Servers'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const query = c.req.valid('query');
        const page = await serversPage(db, c.get('teamId'), pageRequest(query));
        return c.json(pageBody(c, 'servers', page, query.limit, present), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        operationId: 'createServer',
        tags: ['Servers'],
        summary: 'Register a server and issue its agent token',
        request: { body: jsonBody(z.strictObject({ name: nameSchema })) },
        responses: {
          201: locatedResponse(createdServerSchema, 'Created; the agent token is shown only now'),
          ...errorResponses(...bodyErrors, 409),
        },
      }),
      async (c) => {
        const { server, agentToken } = await createServer(db, c.get('teamId'), c.req.valid('json').name);
        holdsSecret(c);
        c.header('location', `/servers/${server.id}`);
        return c.json(
          {
            server: present(server),
            agent: { token: agentToken },
          },
          201,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getServer',
        tags: ['Servers'],
        summary: 'One server',
        request: { params: idParam('srv_...') },
        responses: { 200: jsonResponse(serverSchema, 'Server'), ...errorResponses(404, 422) },
      }),
      async (c) => c.json(present(await getServer(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/agent-token',
        operationId: 'rotateAgentToken',
        tags: ['Servers'],
        summary:
          "Issue a new agent token for a server; the old one stops working at once, and the agent's key is enrolled anew",
        request: { params: idParam('srv_...') },
        responses: {
          200: jsonResponse(
            z.object({ token: z.string().openapi({ description: 'Shown once, as at creation' }) }),
            'The new agent token',
          ),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const server = await getServer(db, c.get('teamId'), c.req.valid('param').id);
        const token = await rotateAgentToken(db, server.id);
        holdsSecret(c);
        return c.json({ token }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteServer',
        tags: ['Servers'],
        summary: 'Remove a server that hosts no environment; its agent token stops working',
        request: { params: idParam('srv_...') },
        responses: { 204: { description: 'Deleted' }, ...errorResponses(404, 409, 422) },
      }),
      async (c) => {
        await deleteServer(db, c.get('teamId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
    );
}

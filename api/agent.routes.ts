import { createRoute, z } from '@hono/zod-openapi';
import type { EnvironmentSpec } from '../common/environment-spec.ts';
import { notFound } from '../common/errors.ts';
import { agentTaskQueue } from '../common/task-queues.ts';
import type { Db } from '../db/database.ts';
import { environmentForServer } from '../db/environments.data.ts';
import { markEnrolled } from '../db/servers.data.ts';
import type { AgentEnv } from './auth.ts';
import { errorResponses, idParam, jsonResponse, newRouter } from './router.ts';

/** Routes agents call with their agent token. They only ever see their own server's environments. */
export function agentRoutes({ db }: { db: Db }) {
  return newRouter<AgentEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: '/hello',
        summary: 'Agent enrolment: who am I and which task queue do I poll',
        responses: {
          200: jsonResponse(
            z.object({
              serverId: z.string(),
              teamId: z.string(),
              serverName: z.string(),
              taskQueue: z.string(),
            }),
            'Identity',
          ),
          ...errorResponses,
        },
      }),
      async (c) => {
        const server = c.get('server');
        await markEnrolled(db, server.id);
        return c.json(
          {
            serverId: server.id,
            teamId: server.team_id,
            serverName: server.name,
            taskQueue: agentTaskQueue(server.id),
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/environments/{id}',
        summary: 'The spec of an environment placed on the calling agent’s server',
        request: { params: idParam('env_...') },
        responses: { 200: jsonResponse(z.any(), 'Environment spec'), ...errorResponses },
      }),
      async (c) => {
        const server = c.get('server');
        const { id } = c.req.valid('param');
        const env = await environmentForServer(db, server.id, id);
        if (!env) throw notFound('environment', id);
        const spec: EnvironmentSpec = {
          environmentId: env.id,
          teamId: env.team_id,
          name: env.name,
          services: env.services,
        };
        return c.json(spec, 200);
      },
    );
}

import { createRoute, z } from '@hono/zod-openapi';
import { notFound } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { createApiToken, deleteApiToken, getTeam, listApiTokens } from '../db/teams.data.ts';
import { errorResponses, idParam, jsonBody, jsonResponse, newRouter } from './router.ts';

const tokenSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })
  .openapi('ApiToken');

export function teamRoutes({ db }: { db: Db }) {
  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        summary: "The caller's team",
        responses: {
          200: jsonResponse(
            z.object({ id: z.string(), name: z.string(), createdAt: z.string() }).openapi('Team'),
            'Team',
          ),
          ...errorResponses,
        },
      }),
      async (c) => {
        const team = await getTeam(db, c.get('teamId'));
        if (!team) throw notFound('team', c.get('teamId'));
        return c.json({ id: team.id, name: team.name, createdAt: team.created_at.toISOString() }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/tokens',
        summary: "The team's API tokens (never their values)",
        responses: {
          200: jsonResponse(z.object({ tokens: z.array(tokenSchema) }), 'Tokens'),
          ...errorResponses,
        },
      }),
      async (c) => {
        const tokens = await listApiTokens(db, c.get('teamId'));
        return c.json(
          {
            tokens: tokens.map((t) => ({
              id: t.id,
              name: t.name,
              createdAt: t.created_at.toISOString(),
              lastUsedAt: t.last_used_at?.toISOString() ?? null,
            })),
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/tokens',
        summary: 'Create an API token; its value is shown only in this response',
        request: { body: jsonBody(z.strictObject({ name: z.string().min(1).max(100) })) },
        responses: {
          201: jsonResponse(z.object({ id: z.string(), name: z.string(), token: z.string() }), 'Created'),
          ...errorResponses,
        },
      }),
      async (c) => {
        const { row, token } = await createApiToken(db, c.get('teamId'), c.req.valid('json').name);
        return c.json({ id: row.id, name: row.name, token }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/tokens/{id}',
        summary: 'Revoke an API token',
        request: { params: idParam('tok_...') },
        responses: { 204: { description: 'Revoked' }, ...errorResponses },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        if (!(await deleteApiToken(db, c.get('teamId'), id))) throw notFound('token', id);
        return c.body(null, 204);
      },
    );
}

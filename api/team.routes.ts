import { createRoute, z } from '@hono/zod-openapi';
import { notFound } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { createTeamKey, getTeamPublicKey } from '../db/team-keys.data.ts';
import { apiTokensPage, createApiToken, deleteApiToken, getTeam } from '../db/teams.data.ts';
import type { Vault } from '../db/vault.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  holdsSecret,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';

const tokenSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })
  .openapi('ApiToken');

const teamKeySchema = z
  .object({
    fingerprint: z.string().openapi({ example: '3f2a-9c1b-0d4e-77a0-51c3-e812-9b06-c4d5' }),
    publicKey: z.string().openapi({ description: 'X25519 public key, hex' }),
    createdAt: z.string(),
  })
  .openapi('TeamKey');

const secretKeyNotice =
  'This secret key is shown only this once. Store it offline now, in a password manager or on paper. ' +
  'strackt keeps it only in its vault and will never show it again. With this key and your bucket ' +
  'credentials you can restore your backups without strackt.';

export const newTeamKeySchema = z
  .object({
    publicKey: z.string(),
    fingerprint: z.string(),
    secretKey: z.string().openapi({ example: 'STK1-ABCD-EFGH-...' }),
    notice: z.string(),
  })
  .openapi('NewTeamKey');

/** The one answer that carries a team's secret key; whoever sends it also sends cache-control: no-store. */
export function presentNewTeamKey(key: Awaited<ReturnType<typeof createTeamKey>>) {
  return {
    publicKey: key.publicKey.toString('hex'),
    fingerprint: key.fingerprint,
    secretKey: key.printableSecret,
    notice: secretKeyNotice,
  };
}

export function teamRoutes({ db, vault }: { db: Db; vault: Vault }) {
  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        operationId: 'getTeam',
        tags: ['Team'],
        summary: "The caller's team",
        responses: {
          200: jsonResponse(
            z
              .object({
                id: z.string(),
                name: z.string(),
                createdAt: z.string(),
                key: teamKeySchema.nullable(),
              })
              .openapi('Team'),
            'Team',
          ),
          ...errorResponses(404),
        },
      }),
      async (c) => {
        const [team, key] = await Promise.all([
          getTeam(db, c.get('teamId')),
          getTeamPublicKey(db, c.get('teamId')),
        ]);
        if (!team) throw notFound('team', c.get('teamId'));
        return c.json(
          {
            id: team.id,
            name: team.name,
            createdAt: team.created_at.toISOString(),
            key: key
              ? {
                  fingerprint: key.fingerprint,
                  publicKey: key.publicKey.toString('hex'),
                  createdAt: key.createdAt.toISOString(),
                }
              : null,
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/key',
        operationId: 'createTeamKey',
        tags: ['Team'],
        summary: "Create the team's key; its secret half is shown only in this response",
        description:
          'Backups are encrypted to the public key. The secret key is returned once, for the team to keep ' +
          'offline; strackt keeps it only in its vault. 409 team_key_exists if the team has one.',
        responses: {
          201: locatedResponse(newTeamKeySchema, 'Created; GET /team shows its public half from now on'),
          409: jsonResponse(errorSchema, 'The team already has a key'),
          ...errorResponses(),
        },
      }),
      async (c) => {
        const key = await createTeamKey(db, vault, c.get('teamId'));
        holdsSecret(c);
        // The one response carrying a secret key: no cache along the way may keep a copy.
        c.header('cache-control', 'no-store');
        c.header('location', '/team');
        return c.json(presentNewTeamKey(key), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/tokens',
        operationId: 'listApiTokens',
        tags: ['Team'],
        summary: "The team's API tokens (never their values), newest first",
        request: { query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('tokens', tokenSchema), 'Tokens'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const query = c.req.valid('query');
        const page = await apiTokensPage(db, c.get('teamId'), pageRequest(query));
        return c.json(
          pageBody(c, 'tokens', page, query.limit, (t) => ({
            id: t.id,
            name: t.name,
            createdAt: t.created_at.toISOString(),
            lastUsedAt: t.last_used_at?.toISOString() ?? null,
          })),
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/tokens',
        operationId: 'createApiToken',
        tags: ['Team'],
        summary: 'Create an API token; its value is shown only in this response',
        request: { body: jsonBody(z.strictObject({ name: z.string().min(1).max(100) })) },
        responses: {
          201: locatedResponse(z.object({ id: z.string(), name: z.string(), token: z.string() }), 'Created'),
          ...errorResponses(...bodyErrors),
        },
      }),
      async (c) => {
        const { row, token } = await createApiToken(db, c.get('teamId'), c.req.valid('json').name);
        holdsSecret(c);
        c.header('location', `/team/tokens/${row.id}`);
        return c.json({ id: row.id, name: row.name, token }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/tokens/{id}',
        operationId: 'revokeApiToken',
        tags: ['Team'],
        summary: 'Revoke an API token',
        request: { params: idParam('tok_...') },
        responses: { 204: { description: 'Revoked' }, ...errorResponses(404, 422) },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        if (!(await deleteApiToken(db, c.get('teamId'), id))) throw notFound('token', id);
        return c.body(null, 204);
      },
    );
}

import { createRoute, z } from '@hono/zod-openapi';
import type { Client } from '@temporalio/client';
import {
  backupStrategySchema,
  nameSchema,
  serviceSpecSchema,
  servicesSchema,
} from '../common/environment-spec.ts';
import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import {
  createEnvironment,
  deleteEnvironment,
  environmentsPage,
  getEnvironment,
  updateEnvironment,
} from '../db/environments.data.ts';
import { getDestination } from '../db/destinations.data.ts';
import { operationsPage } from '../db/operations.data.ts';
import { getServer } from '../db/servers.data.ts';
import { defaultRestorePoint, getSnapshot, snapshotsPage } from '../db/snapshots.data.ts';
import type { Environment } from '../db/tables/environment.table.ts';
import {
  operationStarted,
  presentOperation,
  startOperation,
  type OperationExtra,
} from './operation-starter.ts';
import { operationSchema } from './operations.routes.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import { presentSnapshot, snapshotSchema } from './snapshots.present.ts';
import { requireAgentConnected, requireEnrolledAgent } from './agent-connected.ts';
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

const environmentSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    serverId: z.string(),
    services: z.array(serviceSpecSchema),
    backupStrategy: backupStrategySchema,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Environment');

const present = (e: Environment) => ({
  id: e.id,
  name: e.name,
  serverId: e.server_id,
  services: e.services,
  backupStrategy: e.backup_strategy,
  createdAt: e.created_at.toISOString(),
  updatedAt: e.updated_at.toISOString(),
});

const conflict = { 409: jsonResponse(errorSchema, 'Another operation of this environment is running') };

export interface EnvironmentsDeps {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
  agentStaleAfterMs: number;
}

export function environmentsRoutes(deps: EnvironmentsDeps) {
  const { db } = deps;
  const requireConnected = (serverId: string) => requireAgentConnected(deps, serverId);

  async function operate<K extends 'deploy' | 'stop' | 'backup'>(
    teamId: string,
    id: string,
    kind: K,
    extra: OperationExtra<K>,
  ) {
    const env = await getEnvironment(db, teamId, id);
    await requireConnected(env.server_id);
    return startOperation(deps, { teamId, environmentId: env.id, serverId: env.server_id, kind }, extra);
  }

  /** Every refusal a user can act on, before anything is touched on any server. */
  async function restore(teamId: string, id: string, input: { snapshotId?: string; targetServerId: string }) {
    const env = await getEnvironment(db, teamId, id);
    const snapshot = input.snapshotId
      ? await getSnapshot(db, teamId, input.snapshotId)
      : await defaultRestorePoint(db, teamId, env.id);
    if (snapshot.environment_id !== env.id) {
      throw new DomainError(
        'invalid',
        'snapshot_of_another_environment',
        `snapshotId: snapshot ${snapshot.id} is a snapshot of environment ${snapshot.environment_id}, not of ${env.id}`,
        'snapshotId',
      );
    }
    // Another team's server is, for this team, no server at all.
    const target = await getServer(db, teamId, input.targetServerId);
    await requireEnrolledAgent(deps, target);
    return startOperation(
      deps,
      { teamId, environmentId: env.id, serverId: target.id, kind: 'restore' },
      { snapshotId: snapshot.id },
    );
  }

  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        operationId: 'listEnvironments',
        tags: ['Environments'],
        summary: "List the team's environments, newest first",
        request: { query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('environments', environmentSchema), 'Environments'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const query = c.req.valid('query');
        const page = await environmentsPage(db, c.get('teamId'), pageRequest(query));
        return c.json(pageBody(c, 'environments', page, query.limit, present), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        operationId: 'createEnvironment',
        tags: ['Environments'],
        summary: 'Create an environment placed on one of the team’s servers',
        request: {
          body: jsonBody(
            z.strictObject({
              name: nameSchema,
              serverId: idString,
              services: servicesSchema,
              backupStrategy: backupStrategySchema.optional(),
            }),
          ),
        },
        responses: {
          201: locatedResponse(environmentSchema, 'Created'),
          ...errorResponses(...bodyErrors, 404, 409),
        },
      }),
      async (c) => {
        const env = await createEnvironment(db, c.get('teamId'), c.req.valid('json'));
        c.header('location', `/environments/${env.id}`);
        return c.json(present(env), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getEnvironment',
        tags: ['Environments'],
        summary: 'One environment',
        request: { params: idParam('env_...') },
        responses: { 200: jsonResponse(environmentSchema, 'Environment'), ...errorResponses(404, 422) },
      }),
      async (c) => c.json(present(await getEnvironment(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'patch',
        path: '/{id}',
        operationId: 'updateEnvironment',
        tags: ['Environments'],
        summary:
          'Rename an environment, replace its services (at the next deploy) or change its backup strategy',
        request: {
          params: idParam('env_...'),
          body: jsonBody(
            z.strictObject({
              name: nameSchema.optional(),
              services: servicesSchema.optional(),
              backupStrategy: backupStrategySchema.optional(),
            }),
          ),
        },
        responses: {
          200: jsonResponse(environmentSchema, 'Updated'),
          ...errorResponses(...bodyErrors, 404, 409),
        },
      }),
      async (c) =>
        c.json(
          present(await updateEnvironment(db, c.get('teamId'), c.req.valid('param').id, c.req.valid('json'))),
          200,
        ),
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteEnvironment',
        tags: ['Environments'],
        summary: 'Delete an environment (stop it first: its services are not stopped for you)',
        request: { params: idParam('env_...') },
        responses: { 204: { description: 'Deleted' }, ...errorResponses(404, 422), ...conflict },
      }),
      async (c) => {
        await deleteEnvironment(db, c.get('teamId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/deploy',
        operationId: 'deployEnvironment',
        tags: ['Environments'],
        summary: 'Deploy (or redeploy) the environment on its server; a tracked operation',
        request: { params: idParam('env_...') },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          ...errorResponses(404, 422, 503),
          ...conflict,
        },
      }),
      async (c) => operationStarted(c, await operate(c.get('teamId'), c.req.valid('param').id, 'deploy', {})),
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/stop',
        operationId: 'stopEnvironment',
        tags: ['Environments'],
        summary: "Stop the environment's services; a tracked operation",
        request: { params: idParam('env_...') },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          ...errorResponses(404, 422, 503),
          ...conflict,
        },
      }),
      async (c) => operationStarted(c, await operate(c.get('teamId'), c.req.valid('param').id, 'stop', {})),
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/backups',
        operationId: 'startBackup',
        tags: ['Environments'],
        summary: 'Back up now: a point-in-time snapshot of every volume, to one of the team’s destinations',
        request: {
          params: idParam('env_...'),
          body: jsonBody(z.strictObject({ destinationId: idString })),
        },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          ...errorResponses(...bodyErrors, 404, 503),
          ...conflict,
        },
      }),
      async (c) => {
        const { destinationId } = c.req.valid('json');
        await getDestination(db, c.get('teamId'), destinationId);
        const op = await operate(c.get('teamId'), c.req.valid('param').id, 'backup', { destinationId });
        return operationStarted(c, op);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/restores',
        operationId: 'startRestore',
        tags: ['Environments'],
        summary:
          'Restore a snapshot onto the original server or any other connected server of the team; a tracked operation',
        request: {
          params: idParam('env_...'),
          body: jsonBody(
            z.strictObject({
              snapshotId: idString.optional().openapi({
                description:
                  'Omitted: the newest snapshot that has not failed a verification (the default restore point)',
              }),
              targetServerId: idString,
            }),
          ),
        },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          ...errorResponses(...bodyErrors, 404, 503),
          ...conflict,
        },
      }),
      async (c) =>
        operationStarted(c, await restore(c.get('teamId'), c.req.valid('param').id, c.req.valid('json'))),
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/snapshots',
        operationId: 'listSnapshots',
        tags: ['Environments'],
        summary: "The environment's complete snapshots, newest first",
        request: { params: idParam('env_...'), query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('snapshots', snapshotSchema), 'Snapshots'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const env = await getEnvironment(db, c.get('teamId'), c.req.valid('param').id);
        const query = c.req.valid('query');
        const page = await snapshotsPage(db, c.get('teamId'), env.id, pageRequest(query));
        return c.json(pageBody(c, 'snapshots', page, query.limit, presentSnapshot), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/operations',
        operationId: 'listEnvironmentOperations',
        tags: ['Environments'],
        summary: "The environment's operations, newest first (GET /operations filters the team's)",
        request: { params: idParam('env_...'), query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('operations', operationSchema), 'Operations'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const env = await getEnvironment(db, c.get('teamId'), c.req.valid('param').id);
        const query = c.req.valid('query');
        const page = await operationsPage(db, c.get('teamId'), { environmentId: env.id }, pageRequest(query));
        return c.json(pageBody(c, 'operations', page, query.limit, presentOperation), 200);
      },
    );
}

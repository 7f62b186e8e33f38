import { createRoute, z } from '@hono/zod-openapi';
import { backupStrategySchema, nameSchema, servicesSchema } from '../common/environment-spec.ts';
import {
  createEnvironment,
  deleteEnvironment,
  environmentsPage,
  getEnvironment,
  updateEnvironment,
} from '../db/environments.data.ts';
import { getDestination } from '../db/destinations.data.ts';
import { operationsPage } from '../db/operations.data.ts';
import { snapshotsPage } from '../db/snapshots.data.ts';
import {
  operateEnvironment,
  restoreEnvironment,
  type EnvironmentOperationDeps,
} from './environment-operations.ts';
import { operationStarted, presentOperation } from './operation-starter.ts';
import { environmentSchema, presentEnvironment } from './environments.present.ts';
import { operationSchema } from './operations.routes.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import { presentSnapshot, snapshotSchema } from './snapshots.present.ts';
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

const conflict = { 409: jsonResponse(errorSchema, 'Another operation of this environment is running') };

export type EnvironmentsDeps = EnvironmentOperationDeps;

export function environmentsRoutes(deps: EnvironmentsDeps) {
  const { db } = deps;
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
        return c.json(pageBody(c, 'environments', page, query.limit, presentEnvironment), 200);
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
        return c.json(presentEnvironment(env), 201);
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
      async (c) =>
        c.json(presentEnvironment(await getEnvironment(db, c.get('teamId'), c.req.valid('param').id)), 200),
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
          presentEnvironment(
            await updateEnvironment(db, c.get('teamId'), c.req.valid('param').id, c.req.valid('json')),
          ),
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
      async (c) =>
        operationStarted(
          c,
          await operateEnvironment(deps, c.get('teamId'), c.req.valid('param').id, 'deploy', {}),
        ),
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
      async (c) =>
        operationStarted(
          c,
          await operateEnvironment(deps, c.get('teamId'), c.req.valid('param').id, 'stop', {}),
        ),
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
        const op = await operateEnvironment(deps, c.get('teamId'), c.req.valid('param').id, 'backup', {
          destinationId,
        });
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
        operationStarted(
          c,
          await restoreEnvironment(deps, c.get('teamId'), c.req.valid('param').id, c.req.valid('json')),
        ),
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

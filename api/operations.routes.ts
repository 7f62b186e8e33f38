import { createRoute, z } from '@hono/zod-openapi';
import type { Db } from '../db/database.ts';
import { getOperation } from '../db/operations.data.ts';
import { presentOperation } from './operation-starter.ts';
import { errorResponses, idParam, jsonResponse, newRouter } from './router.ts';

export const operationSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['deploy', 'stop', 'backup', 'restore']),
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
        error: z.string().optional(),
      }),
    ),
    error: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Operation');

export function operationsRoutes({ db }: { db: Db }) {
  return newRouter().openapi(
    createRoute({
      method: 'get',
      path: '/{id}',
      summary: 'An operation (deploy, stop, backup, restore) with its steps',
      request: { params: idParam('op_...') },
      responses: { 200: jsonResponse(operationSchema, 'Operation'), ...errorResponses },
    }),
    async (c) =>
      c.json(presentOperation(await getOperation(db, c.get('teamId'), c.req.valid('param').id)), 200),
  );
}

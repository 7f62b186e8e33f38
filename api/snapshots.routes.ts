import { createRoute, z } from '@hono/zod-openapi';
import { notFound } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { errorResponses, idParam, jsonBody, jsonResponse, newRouter } from './router.ts';
import { presentSnapshot, snapshotSchema } from './snapshots.present.ts';

/** One snapshot of the team's: pin it so that no retention rule ever prunes it, or unpin it. */
export function snapshotsRoutes({ db }: { db: Db }) {
  return newRouter().openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      summary: 'Pin or unpin a snapshot (a pinned one is never pruned)',
      request: { params: idParam('snap_...'), body: jsonBody(z.strictObject({ pinned: z.boolean() })) },
      responses: { 200: jsonResponse(snapshotSchema, 'Snapshot'), ...errorResponses },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const row = await db
        .updateTable('snapshots')
        .set({ pinned: c.req.valid('json').pinned })
        .where('team_id', '=', c.get('teamId'))
        .where('id', '=', id)
        .where('status', '=', 'complete')
        .returningAll()
        .executeTakeFirst();
      if (!row) throw notFound('snapshot', id);
      return c.json(presentSnapshot(row), 200);
    },
  );
}

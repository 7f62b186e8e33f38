import { createRoute, z } from '@hono/zod-openapi';
import { preview } from '../common/schedule-preview.ts';
import { overlapInWords, scheduleBodySchema } from '../common/schedule-spec.ts';
import { getEnvironment } from '../db/environments.data.ts';
import { insertSchedule, missedRunsPage, schedulesPage } from '../db/schedules.data.ts';
import { changeSchedule, type ScheduleSyncDeps } from './schedule-sync.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import {
  bodyErrors,
  errorResponses,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';

import { fieldsOf, present, runSchema, scheduleSchema } from './schedule-present.ts';

/**
 * An environment's backup schedules (mounted at /environments): preview, save, list, and the runs
 * that made no snapshot. Each schedule is a Temporal Schedule too, kept in step with its row by
 * changeSchedule (schedule-sync.ts).
 */
export function environmentSchedulesRoutes(deps: ScheduleSyncDeps) {
  const { db } = deps;
  const envParam = idParam('env_...');
  return newRouter()
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/schedules/preview',
        operationId: 'previewSchedule',
        tags: ['Schedules'],
        summary: 'The next runs of a schedule as Temporal will start them, with warnings, before saving it',
        request: {
          params: envParam,
          query: z.object({ count: z.coerce.number().int().min(1).max(50).default(5) }),
          body: jsonBody(scheduleBodySchema),
        },
        responses: {
          200: jsonResponse(
            z.object({
              cron: z.string(),
              timezone: z.string(),
              runs: z.array(runSchema),
              warnings: z.array(z.string()),
              overlapInWords: z.string(),
            }),
            'Preview',
          ),
          ...errorResponses(...bodyErrors, 404),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        await getEnvironment(db, teamId, c.req.valid('param').id);
        const body = c.req.valid('json');
        const fields = await fieldsOf(db, teamId, body);
        const shown = preview(
          fields.cron,
          fields.compiled,
          fields.timezone,
          Math.floor(Date.now() / 1000),
          c.req.valid('query').count,
        );
        return c.json(
          {
            cron: fields.cron,
            timezone: fields.timezone,
            ...shown,
            overlapInWords: overlapInWords[body.overlap],
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/schedules',
        operationId: 'createSchedule',
        tags: ['Schedules'],
        summary: 'Save a backup schedule (a Temporal Schedule is made with it)',
        request: { params: envParam, body: jsonBody(scheduleBodySchema) },
        responses: {
          201: locatedResponse(scheduleSchema, 'Saved'),
          ...errorResponses(...bodyErrors, 404, 503),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const env = await getEnvironment(db, teamId, c.req.valid('param').id);
        const body = c.req.valid('json');
        const { compiled: _compiled, ...fields } = await fieldsOf(db, teamId, body);
        const saved = await changeSchedule(deps, async (tx) => {
          const row = await insertSchedule(tx, teamId, env.id, fields);
          return { id: row.id, before: undefined, after: row, result: row };
        });
        c.header('location', `/schedules/${saved.id}`);
        return c.json(present(saved), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/schedules',
        operationId: 'listSchedules',
        tags: ['Schedules'],
        summary: 'The environment’s backup schedules, newest first',
        request: { params: envParam, query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('schedules', scheduleSchema), 'Schedules'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const env = await getEnvironment(db, teamId, c.req.valid('param').id);
        const query = c.req.valid('query');
        const page = await schedulesPage(db, teamId, env.id, pageRequest(query));
        return c.json(pageBody(c, 'schedules', page, query.limit, present), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}/missed-backups',
        operationId: 'listMissedBackups',
        tags: ['Schedules'],
        summary: 'Scheduled runs that produced no snapshot: failed, skipped, or never started; newest first',
        request: { params: envParam, query: pageQuery },
        responses: {
          200: jsonResponse(
            pageSchema(
              'missedBackups',
              z.object({
                scheduleId: z.string(),
                nominalAt: z.string(),
                status: z.enum(['failed', 'skipped', 'missed']),
                operationId: z.string().nullable(),
                reason: z.string().nullable(),
              }),
            ),
            'Missed backups',
          ),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const env = await getEnvironment(db, c.get('teamId'), c.req.valid('param').id);
        const query = c.req.valid('query');
        const page = await missedRunsPage(db, env.id, pageRequest(query));
        return c.json(
          pageBody(c, 'missedBackups', page, query.limit, (r) => ({
            scheduleId: r.schedule_id,
            nominalAt: r.nominal_at.toISOString(),
            status: r.status,
            operationId: r.operation_id,
            reason: r.error,
          })),
          200,
        );
      },
    );
}

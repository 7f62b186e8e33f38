import { createRoute, z } from '@hono/zod-openapi';
import { localTime } from '../common/schedule-preview.ts';
import { retentionSchema, scheduleBodySchema } from '../common/schedule-spec.ts';
import { startPrune } from '../common/workflow-starts.ts';
import { getOperation } from '../db/operations.data.ts';
import {
  deleteSchedule,
  getSchedule,
  lockSchedule,
  recentRuns,
  setScheduleEnabled,
  updateSchedule,
} from '../db/schedules.data.ts';
import { changeSchedule, temporalScheduleId, type ScheduleSyncDeps } from './schedule-sync.ts';
import { operationStarted } from './operation-starter.ts';
import { previewRetention } from './retention-preview.ts';
import { runScheduleNow } from './schedule-run-now.ts';
import { operationSchema } from './operations.routes.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';

import { fieldsOf, present, runSchema, scheduleSchema } from './schedule-present.ts';

/**
 * One backup schedule (mounted at /schedules): read, replace, pause, resume, run now, prune, delete,
 * and its retention preview; reads show Temporal's own view of the next runs.
 */
export function schedulesRoutes(deps: ScheduleSyncDeps) {
  const { db, temporal } = deps;

  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getSchedule',
        tags: ['Schedules'],
        summary: 'A schedule, its next runs as Temporal reports them, and its recent runs with their outcome',
        request: { params: idParam('sch_...') },
        responses: {
          200: jsonResponse(
            scheduleSchema.extend({
              nextRuns: z.array(runSchema),
              skippedByOverlap: z.number(),
              recentRuns: z.array(
                z.object({
                  nominalAt: z.string(),
                  status: z.enum(['running', 'succeeded', 'failed', 'skipped', 'missed']),
                  operationId: z.string().nullable(),
                  snapshotId: z.string().nullable(),
                  error: z.string().nullable(),
                  finishedAt: z.string().nullable(),
                }),
              ),
            }),
            'Schedule',
          ),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const schedule = await getSchedule(db, c.get('teamId'), c.req.valid('param').id);
        const described = await temporal.schedule.getHandle(temporalScheduleId(schedule.id)).describe();
        const runs = await recentRuns(db, schedule.id);
        return c.json(
          {
            ...present(schedule),
            nextRuns: described.info.nextActionTimes.map((d) => ({
              at: d.toISOString(),
              local: localTime(d.getTime() / 1000, schedule.timezone),
            })),
            skippedByOverlap: described.info.numActionsSkippedOverlap,
            recentRuns: runs.map((r) => ({
              nominalAt: r.nominal_at.toISOString(),
              status: r.status,
              operationId: r.operation_id,
              snapshotId: r.snapshot_id,
              error: r.error,
              finishedAt: r.finished_at?.toISOString() ?? null,
            })),
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/prune',
        operationId: 'pruneSchedule',
        tags: ['Schedules'],
        summary: 'Apply the schedule’s retention rule now (it also runs after each of its backups)',
        description:
          'Starts the pruneSnapshots workflow (202, like other work started): the snapshots it chooses are no ' +
          'longer listed at once; their objects go first, then the rows are marked deleted. What it deleted is ' +
          'the workflow’s result (`temporal workflow result --workflow-id ...`). Pinned snapshots, ones being ' +
          'restored or verified, and ones that failed verification are never deleted by a rule. Safe to run ' +
          'twice, or while a backup runs.',
        request: { params: idParam('sch_...') },
        responses: {
          202: jsonResponse(z.object({ workflowId: z.string() }), 'Started'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const schedule = await getSchedule(db, c.get('teamId'), c.req.valid('param').id);
        const prune = await startPrune(deps, {
          teamId: schedule.team_id,
          environmentId: schedule.environment_id,
          scheduleId: schedule.id,
        });
        return c.json({ workflowId: prune.workflowId }, 202);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/retention/preview',
        operationId: 'previewRetention',
        tags: ['Schedules'],
        summary:
          'Which snapshots a retention rule keeps and which it deletes, with the reason for each kept one',
        description:
          'By default the schedule’s own complete snapshots and its saved rule; `retention` tries another rule, ' +
          '`simulateDays` a series of this schedule’s runs over that many past days instead of the real snapshots.',
        request: {
          params: idParam('sch_...'),
          body: jsonBody(
            z.strictObject({
              retention: retentionSchema.optional(),
              simulateDays: z.number().int().min(1).max(800).optional(),
            }),
          ),
        },
        responses: {
          200: jsonResponse(
            z.object({
              retentionInWords: z.string(),
              kept: z.number(),
              deleted: z.number(),
              snapshots: z.array(
                z.object({
                  id: z.string(),
                  takenAt: z.string(),
                  local: z.string(),
                  keep: z.boolean(),
                  reasons: z.array(z.string()),
                }),
              ),
            }),
            'Preview',
          ),
          ...errorResponses(...bodyErrors, 404),
        },
      }),
      async (c) => {
        const schedule = await getSchedule(db, c.get('teamId'), c.req.valid('param').id);
        const { retention, simulateDays } = c.req.valid('json');
        return c.json(
          await previewRetention(db, schedule, retention ?? schedule.retention ?? {}, simulateDays),
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'put',
        path: '/{id}',
        operationId: 'replaceSchedule',
        tags: ['Schedules'],
        summary: 'Replace a schedule (the whole of it: fields left out take their defaults)',
        request: { params: idParam('sch_...'), body: jsonBody(scheduleBodySchema) },
        responses: {
          200: jsonResponse(scheduleSchema, 'Saved'),
          ...errorResponses(...bodyErrors, 404, 503),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const id = c.req.valid('param').id;
        const { compiled: _compiled, ...fields } = await fieldsOf(db, teamId, c.req.valid('json'));
        const saved = await changeSchedule(deps, async (tx) => {
          const before = await lockSchedule(tx, teamId, id);
          const after = await updateSchedule(tx, id, fields);
          return { id, before, after, result: after };
        });
        return c.json(present(saved), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/trigger',
        operationId: 'triggerSchedule',
        tags: ['Schedules'],
        summary: 'Run now: a backup as the schedule makes them; answers the operation it started',
        description:
          'Refused (409 run_in_progress) while a run of the schedule goes on, whatever its overlap rule: run ' +
          'now starts a run at once or not at all. A run that cannot start (another operation of the ' +
          'environment running, its agent offline) is recorded and notified as a missed run, and answered ' +
          'with 409 run_skipped and the reason.',
        request: { params: idParam('sch_...') },
        responses: {
          202: locatedResponse(operationSchema, 'Started'),
          409: jsonResponse(errorSchema, 'A run is going, or the run was skipped'),
          ...errorResponses(404, 422, 503),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const operationId = await runScheduleNow(deps, teamId, c.req.valid('param').id);
        return operationStarted(c, await getOperation(db, teamId, operationId));
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/{action}',
        operationId: 'pauseOrResumeSchedule',
        tags: ['Schedules'],
        summary: 'Pause or resume a schedule',
        request: {
          params: idParam('sch_...').extend({
            action: z.enum(['pause', 'resume']).openapi({ param: { name: 'action', in: 'path' } }),
          }),
        },
        responses: {
          200: jsonResponse(scheduleSchema, 'Done'),
          ...errorResponses(404, 409, 422, 503),
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const { id, action } = c.req.valid('param');
        const saved = await changeSchedule(deps, async (tx) => {
          const before = await lockSchedule(tx, teamId, id);
          const after = await setScheduleEnabled(tx, before, action === 'resume');
          return { id, before, after, result: after };
        });
        return c.json(present(saved), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteSchedule',
        tags: ['Schedules'],
        summary: 'Delete a schedule and its Temporal Schedule',
        request: { params: idParam('sch_...') },
        responses: { 204: { description: 'Deleted' }, ...errorResponses(404, 422, 503) },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const id = c.req.valid('param').id;
        await changeSchedule(deps, async (tx) => {
          const before = await lockSchedule(tx, teamId, id);
          await deleteSchedule(tx, id);
          return { id, before, after: undefined, result: undefined };
        });
        return c.body(null, 204);
      },
    );
}

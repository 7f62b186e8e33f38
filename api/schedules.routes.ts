import { createRoute, z } from '@hono/zod-openapi';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { DomainError, invalid } from '../common/errors.ts';
import { localTime, preview } from '../common/schedule-preview.ts';
import { applyRetention, retentionInWords, type RetainedSnapshot } from '../common/retention.ts';
import {
  compileSchedule,
  overlapInWords,
  retentionSchema,
  scheduleBodySchema,
  type ScheduleBody,
} from '../common/schedule-spec.ts';
import { compileCron, nextRun } from '../common/temporal-calendar.ts';
import { startPrune } from '../common/workflow-starts.ts';
import type { Db } from '../db/database.ts';
import { destinationExists } from '../db/destinations.data.ts';
import { getEnvironment } from '../db/environments.data.ts';
import { snapshotsForRetention } from '../db/prune.data.ts';
import { getOperation } from '../db/operations.data.ts';
import {
  deleteSchedule,
  firstRunAfter,
  getSchedule,
  insertSchedule,
  lockSchedule,
  missedRunsPage,
  recentRuns,
  runningRunOperation,
  schedulesPage,
  setScheduleEnabled,
  updateSchedule,
  type ScheduleFields,
} from '../db/schedules.data.ts';
import type { BackupSchedule } from '../db/tables/schedule.table.ts';
import { changeSchedule, temporalScheduleId, type ScheduleSyncDeps } from './schedule-sync.ts';
import { operationStarted } from './operation-starter.ts';
import { operationSchema } from './operations.routes.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
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

const runSchema = z.object({ at: z.string(), local: z.string() });

const scheduleSchema = z
  .object({
    id: z.string(),
    environmentId: z.string(),
    destinationId: z.string(),
    preset: z.string().optional(),
    minute: z.number().optional(),
    at: z.string().optional(),
    day: z.string().optional(),
    cron: z.string().openapi({ description: 'The expression Temporal runs (a preset’s, or the one given)' }),
    timezone: z.string(),
    enabled: z.boolean(),
    overlap: z.enum(['skip', 'bufferOne']),
    overlapInWords: z.string(),
    retention: retentionSchema.nullable(),
    retentionInWords: z.string(),
    verify: z.boolean().openapi({ description: 'Each snapshot is verified right after its backup' }),
    temporalScheduleId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Schedule');

const present = (s: BackupSchedule): z.infer<typeof scheduleSchema> => ({
  id: s.id,
  environmentId: s.environment_id,
  destinationId: s.destination_id,
  ...(s.body.preset && { preset: s.body.preset }),
  ...(s.body.minute !== undefined && { minute: s.body.minute }),
  ...(s.body.at && { at: s.body.at }),
  ...(s.body.day && { day: s.body.day }),
  cron: s.cron,
  timezone: s.timezone,
  enabled: s.enabled,
  overlap: s.overlap,
  overlapInWords: overlapInWords[s.overlap],
  retention: s.retention,
  retentionInWords: retentionInWords(s.retention ?? {}),
  verify: s.verify_after_backup,
  temporalScheduleId: temporalScheduleId(s.id),
  createdAt: s.created_at.toISOString(),
  updatedAt: s.updated_at.toISOString(),
});

// A triggered run's first activity records it (and its operation) within a second or so; this bounds the
// wait for a busy worker without holding the request long. Temporal's trigger call answers nothing about
// the run it starts, so the run is found by its row: the first of the schedule due after the latest known.
const triggerWaitMs = 10_000;
const triggerPollMs = 200;

/** Checks a body against the team's data too: the destination must be one of the team's. */
async function fieldsOf(
  db: Db,
  teamId: string,
  body: ScheduleBody,
): Promise<ScheduleFields & { compiled: ReturnType<typeof compileSchedule>['compiled'] }> {
  const compiled = compileSchedule(body, Math.floor(Date.now() / 1000));
  if (!(await destinationExists(db, teamId, body.destinationId)))
    throw invalid('destinationId', `no destination ${body.destinationId} in this team`);
  return {
    destinationId: body.destinationId,
    body,
    cron: compiled.cron,
    timezone: compiled.timezone,
    enabled: body.enabled,
    overlap: body.overlap,
    retention: body.retention ?? null,
    verify: body.verify,
    compiled: compiled.compiled,
  };
}

/**
 * Backup schedules of an environment. Each is a Temporal Schedule too, kept in step with its row by
 * changeSchedule (schedule-sync.ts); reads show Temporal's own view of the next runs.
 */
export function schedulesRoutes(deps: ScheduleSyncDeps) {
  const { db, temporal } = deps;
  const envParam = idParam('env_...');

  /** The run a trigger started, once recorded; undefined if none is within triggerWaitMs. */
  async function triggeredRun(scheduleId: string, latest: Date | undefined) {
    for (const deadline = Date.now() + triggerWaitMs; Date.now() < deadline;) {
      const run = await firstRunAfter(db, scheduleId, latest);
      if (run) return run;
      await new Promise((resolve) => setTimeout(resolve, triggerPollMs));
    }
    return undefined;
  }

  return newRouter()
    .openapi(
      createRoute({
        method: 'post',
        path: '/environments/{id}/schedules/preview',
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
        path: '/environments/{id}/schedules',
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
        path: '/environments/{id}/schedules',
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
        path: '/environments/{id}/missed-backups',
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
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/schedules/{id}',
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
        path: '/schedules/{id}/prune',
        operationId: 'pruneSchedule',
        tags: ['Schedules'],
        summary: 'Apply the schedule’s retention rule now (it also runs after each of its backups)',
        description:
          'Runs the pruneSnapshots workflow and answers what it deleted: objects first, then the rows marked ' +
          'deleted. Pinned snapshots, ones being restored or verified, and ones that failed verification are ' +
          'never deleted by a rule. Safe to run twice, or while a backup runs.',
        request: { params: idParam('sch_...') },
        responses: {
          200: jsonResponse(z.object({ workflowId: z.string(), deleted: z.array(z.string()) }), 'Pruned'),
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
        const { deleted } = await prune.result();
        return c.json({ workflowId: prune.workflowId, deleted }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/schedules/{id}/retention/preview',
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
        const rule = retention ?? schedule.retention ?? {};
        let series: RetainedSnapshot[];
        if (simulateDays) {
          const cron = compileCron(schedule.cron);
          const now = Math.floor(Date.now() / 1000);
          series = [];
          // At most 5,000 runs: every 15 minutes, that is 52 days.
          for (
            let t = nextRun(cron, schedule.timezone, now - simulateDays * 86_400);
            t !== undefined && t <= now && series.length < 5000;
            t = nextRun(cron, schedule.timezone, t)
          )
            series.push({ id: `simulated-${new Date(t * 1000).toISOString()}`, takenAt: t });
        } else {
          series = await snapshotsForRetention(db, schedule.id);
        }
        const decisions = applyRetention(series, rule, schedule.timezone);
        const takenAt = new Map(series.map((s) => [s.id, s.takenAt]));
        return c.json(
          {
            retentionInWords: retentionInWords(rule),
            kept: decisions.filter((d) => d.keep).length,
            deleted: decisions.filter((d) => !d.keep).length,
            snapshots: decisions.map((d) => ({
              id: d.id,
              takenAt: new Date(takenAt.get(d.id)! * 1000).toISOString(),
              local: localTime(Math.floor(takenAt.get(d.id)!), schedule.timezone),
              keep: d.keep,
              reasons: d.reasons,
            })),
          },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'put',
        path: '/schedules/{id}',
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
        path: '/schedules/{id}/trigger',
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
        const { id } = c.req.valid('param');
        const schedule = await getSchedule(db, teamId, id);
        const handle = temporal.schedule.getHandle(temporalScheduleId(id));
        // Our own record of a run still going is checked too: Temporal's list of running actions lags by seconds.
        const going =
          (await handle.describe()).info.runningActions[0]?.workflow.workflowId ??
          (await runningRunOperation(db, id));
        if (going)
          throw new DomainError(
            'conflict',
            'run_in_progress',
            `a run of this schedule is still going (${going}); run now starts one only when none is (overlap "${schedule.overlap}")`,
          );
        // Temporal names a run's workflow by its second: a trigger within the second of the latest run
        // would get that run's id and be dropped without a word, so it waits for the next second.
        const [latest] = await recentRuns(db, id, 1);
        const sameSecond = latest ? latest.nominal_at.getTime() + 1000 - Date.now() : 0;
        if (sameSecond > 0) await new Promise((resolve) => setTimeout(resolve, sameSecond + 50));
        // The rule is applied above; Temporal's view of a run that just ended can lag by seconds, and
        // under its own skip or buffer it would drop or delay this run.
        await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
        const run = await triggeredRun(id, latest?.nominal_at);
        if (!run)
          throw new DomainError(
            'unavailable',
            'run_not_started',
            `Temporal took the trigger but the run had not started within ${triggerWaitMs / 1000} s ` +
              `(is the control-plane worker running?); GET /schedules/${id} shows it once it does`,
          );
        if (!run.operation_id)
          throw new DomainError(
            'conflict',
            'run_skipped',
            `the run was ${run.status}: ${run.error ?? 'no reason given'}`,
          );
        return operationStarted(c, await getOperation(db, teamId, run.operation_id));
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/schedules/{id}/{action}',
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
        path: '/schedules/{id}',
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

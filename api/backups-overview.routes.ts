import { createRoute, z } from '@hono/zod-openapi';
import { retentionInWords } from '../common/retention.ts';
import { localTime } from '../common/schedule-preview.ts';
import { getEnvironment } from '../db/environments.data.ts';
import { listSchedules, missedRuns } from '../db/schedules.data.ts';
import { snapshotsAtAGlance } from '../db/snapshots.data.ts';
import { scheduleNextRuns } from './schedule-next-runs.ts';
import type { ScheduleSyncDeps } from './schedule-sync.ts';
import { errorResponses, idParam, jsonResponse, newRouter } from './router.ts';

const overviewSchema = z
  .object({
    lastSuccessfulBackup: z
      .object({ snapshotId: z.string(), at: z.string(), sizeBytes: z.number(), destinationId: z.string() })
      .nullable(),
    lastVerified: z
      .object({ snapshotId: z.string(), at: z.string(), result: z.string(), error: z.string().nullable() })
      .nullable()
      .openapi({ description: 'The latest verification of any of its snapshots, and how it went' }),
    failedVerification: z
      .array(z.string())
      .openapi({ description: 'Listed snapshots whose last verification failed or found them missing' }),
    nextRuns: z.array(z.object({ scheduleId: z.string(), at: z.string(), local: z.string() })),
    missedRuns: z.object({
      count: z.number().openapi({ description: 'Scheduled runs that made no snapshot, all time' }),
      latest: z.array(
        z.object({
          scheduleId: z.string(),
          nominalAt: z.string(),
          status: z.string(),
          reason: z.string().nullable(),
        }),
      ),
    }),
    storage: z.array(z.object({ destinationId: z.string(), snapshots: z.number(), bytes: z.number() })),
    schedules: z.array(
      z.object({ scheduleId: z.string(), enabled: z.boolean(), retentionInWords: z.string() }),
    ),
  })
  .openapi('BackupsOverview');

/** What a user needs to trust an environment's backups, on one page. */
export function backupsOverviewRoutes(deps: ScheduleSyncDeps) {
  const { db, temporal } = deps;
  const nextRunsOf = scheduleNextRuns(temporal);
  return newRouter().openapi(
    createRoute({
      method: 'get',
      path: '/{id}/backups',
      operationId: 'getBackupsOverview',
      tags: ['Environments'],
      summary:
        'The environment’s backups at a glance: last success, next runs, missed runs, storage, retention',
      request: { params: idParam('env_...') },
      responses: { 200: jsonResponse(overviewSchema, 'Overview'), ...errorResponses(404, 422) },
    }),
    async (c) => {
      const teamId = c.get('teamId');
      const env = await getEnvironment(db, teamId, c.req.valid('param').id);
      const [snapshots, schedules, missed] = await Promise.all([
        snapshotsAtAGlance(db, teamId, env.id),
        listSchedules(db, teamId, env.id),
        missedRuns(db, env.id, 5),
      ]);
      const { last, lastVerified: verified } = snapshots;
      // Temporal's own next runs, every enabled schedule's, merged (each kept until its first passes).
      const nextRuns = (
        await Promise.all(
          schedules
            .filter((s) => s.enabled)
            .map(async (s) =>
              (await nextRunsOf(s)).map((d) => ({
                scheduleId: s.id,
                at: d.toISOString(),
                local: localTime(d.getTime() / 1000, s.timezone),
              })),
            ),
        )
      )
        .flat()
        .sort((a, b) => a.at.localeCompare(b.at))
        .slice(0, 5);
      return c.json(
        {
          lastSuccessfulBackup: last
            ? {
                snapshotId: last.id,
                at: last.created_at.toISOString(),
                sizeBytes: Number(last.size_bytes ?? 0),
                destinationId: last.destination_id,
              }
            : null,
          lastVerified: verified
            ? {
                snapshotId: verified.id,
                at: verified.verified_at!.toISOString(),
                result: verified.verification!,
                error: verified.verification_error,
              }
            : null,
          failedVerification: snapshots.failedVerification,
          nextRuns,
          missedRuns: {
            count: missed.count,
            latest: missed.runs.map((r) => ({
              scheduleId: r.schedule_id,
              nominalAt: r.nominal_at.toISOString(),
              status: r.status,
              reason: r.error,
            })),
          },
          storage: snapshots.storage,
          schedules: schedules.map((s) => ({
            scheduleId: s.id,
            enabled: s.enabled,
            retentionInWords: retentionInWords(s.retention ?? {}),
          })),
        },
        200,
      );
    },
  );
}

import { createRoute, z } from '@hono/zod-openapi';
import { retentionInWords } from '../common/retention.ts';
import { localTime } from '../common/schedule-preview.ts';
import { backupsOverviewFigures } from '../db/backups-overview.data.ts';
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
      const { last, lastVerified, failedVerification, storage, schedules, missed } =
        await backupsOverviewFigures(db, c.get('teamId'), c.req.valid('param').id);
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
                at: last.createdAt.toISOString(),
                sizeBytes: last.sizeBytes,
                destinationId: last.destinationId,
              }
            : null,
          lastVerified: lastVerified
            ? {
                snapshotId: lastVerified.id,
                at: lastVerified.verifiedAt.toISOString(),
                result: lastVerified.result,
                error: lastVerified.error,
              }
            : null,
          failedVerification,
          nextRuns,
          missedRuns: {
            count: missed.count,
            latest: missed.latest.map((r) => ({
              scheduleId: r.scheduleId,
              nominalAt: r.nominalAt.toISOString(),
              status: r.status,
              reason: r.error,
            })),
          },
          storage,
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

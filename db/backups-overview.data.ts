import type { ExpressionBuilder } from 'kysely';
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/postgres';
import { notFound } from '../common/errors.ts';
import type { RetentionRule } from '../common/retention.ts';
import type { Database, Db } from './database.ts';
import { missedStatusesSql } from './schedules.data.ts';

/** What the backups overview shows of an environment, as PostgreSQL counts it. */
export interface BackupsOverviewFigures {
  last: { id: string; createdAt: Date; sizeBytes: number; destinationId: string } | undefined;
  /** The snapshot verified last, however it went. */
  lastVerified: { id: string; verifiedAt: Date; result: string; error: string | null } | undefined;
  /** Ids of the snapshots whose last verification failed or found them missing, newest first. */
  failedVerification: string[];
  /** Count and bytes per destination, the destination of the newest snapshot first. */
  storage: { destinationId: string; snapshots: number; bytes: number }[];
  schedules: {
    id: string;
    enabled: boolean;
    cron: string;
    timezone: string;
    retention: RetentionRule | null;
  }[];
  /** Scheduled runs that made no snapshot (failed, skipped, never started): how many, and the latest few. */
  missed: {
    count: number;
    latest: { scheduleId: string; nominalAt: Date; status: string; error: string | null }[];
  };
}

type InEnvironment = ExpressionBuilder<Database & { e: Database['environments'] }, 'e'>;

// Only complete snapshots exist for users: an upload in progress or abandoned is never counted.
const completeSnapshots = (eb: InEnvironment) =>
  eb
    .selectFrom('snapshots as s')
    .whereRef('s.team_id', '=', 'e.team_id')
    .whereRef('s.environment_id', '=', 'e.id')
    .where('s.status', '=', 'complete');

const missedRuns = (eb: InEnvironment) =>
  eb
    .selectFrom('schedule_runs as r')
    .innerJoin('backup_schedules as b', 'b.id', 'r.schedule_id')
    .whereRef('b.environment_id', '=', 'e.id')
    .where('r.status', 'in', missedStatusesSql);

/**
 * All of the overview's figures in one statement, one round trip and one pooled connection: pages
 * leave the overview open and poll it, and as eight queries (seven of them at once) a request held
 * seven of the API's ten connections and waited for them under load (issue 22, bench:load). The
 * nested rows come back as JSON. A missing environment, or another team's, is a 404 as before.
 */
export async function backupsOverviewFigures(
  db: Db,
  teamId: string,
  environmentId: string,
): Promise<BackupsOverviewFigures> {
  const row = await db
    .selectFrom('environments as e')
    .where('e.team_id', '=', teamId)
    .where('e.id', '=', environmentId)
    .select((eb) => [
      jsonObjectFrom(
        completeSnapshots(eb)
          .select(['s.id', 's.created_at', 's.size_bytes', 's.destination_id'])
          .orderBy('s.created_at', 'desc')
          .limit(1),
      ).as('last'),
      jsonObjectFrom(
        completeSnapshots(eb)
          .select(['s.id', 's.verified_at', 's.verification', 's.verification_error'])
          .where('s.verified_at', 'is not', null)
          .orderBy('s.verified_at', 'desc')
          .orderBy('s.created_at', 'desc')
          .limit(1),
      ).as('lastVerified'),
      jsonArrayFrom(
        completeSnapshots(eb)
          .select('s.id')
          .where('s.verification', 'in', ['failed', 'missing'])
          .orderBy('s.created_at', 'desc'),
      ).as('failedVerification'),
      jsonArrayFrom(
        completeSnapshots(eb)
          .select((sb) => [
            's.destination_id',
            sb.fn.countAll<number>().as('snapshots'),
            sb.fn.coalesce(sb.fn.sum<number>('s.size_bytes'), sb.lit(0)).as('bytes'),
          ])
          .groupBy('s.destination_id')
          .orderBy((sb) => sb.fn.max('s.created_at'), 'desc'),
      ).as('storage'),
      jsonArrayFrom(
        eb
          .selectFrom('backup_schedules as b')
          .select(['b.id', 'b.enabled', 'b.cron', 'b.timezone', 'b.retention'])
          .whereRef('b.team_id', '=', 'e.team_id')
          .whereRef('b.environment_id', '=', 'e.id')
          .orderBy('b.created_at'),
      ).as('schedules'),
      missedRuns(eb)
        .select((mb) => mb.fn.countAll<number>().as('count'))
        .$asScalar()
        .as('missedCount'),
      jsonArrayFrom(
        missedRuns(eb)
          .select(['r.schedule_id', 'r.nominal_at', 'r.status', 'r.error'])
          .orderBy('r.nominal_at', 'desc')
          .limit(5),
      ).as('missedLatest'),
    ])
    .executeTakeFirst();
  if (!row) throw notFound('environment', environmentId);
  // Nested rows come as JSON: timestamps are strings and bigints numbers there.
  return {
    last: row.last
      ? {
          id: row.last.id,
          createdAt: new Date(row.last.created_at),
          sizeBytes: Number(row.last.size_bytes ?? 0),
          destinationId: row.last.destination_id,
        }
      : undefined,
    lastVerified: row.lastVerified
      ? {
          id: row.lastVerified.id,
          verifiedAt: new Date(row.lastVerified.verified_at!),
          result: row.lastVerified.verification!,
          error: row.lastVerified.verification_error,
        }
      : undefined,
    failedVerification: row.failedVerification.map((s) => s.id),
    storage: row.storage.map((s) => ({
      destinationId: s.destination_id,
      snapshots: Number(s.snapshots),
      bytes: Number(s.bytes),
    })),
    schedules: row.schedules.map((s) => ({
      id: s.id,
      enabled: s.enabled,
      cron: s.cron,
      timezone: s.timezone,
      retention: s.retention,
    })),
    missed: {
      count: Number(row.missedCount),
      latest: row.missedLatest.map((r) => ({
        scheduleId: r.schedule_id,
        nominalAt: new Date(r.nominal_at),
        status: r.status,
        error: r.error,
      })),
    },
  };
}

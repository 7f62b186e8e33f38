import { sql, type Transaction } from 'kysely';
import { isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { RetentionRule } from '../common/retention.ts';
import type { ScheduleBody } from '../common/schedule-spec.ts';
import type { Database, Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import { inProgressOr, pendingOperation, type NewOperation } from './operations.data.ts';
import type { BackupSchedule, ScheduleRun, ScheduleRunStatus } from './tables/schedule.table.ts';

export interface ScheduleFields {
  destinationId: string;
  body: ScheduleBody;
  cron: string;
  timezone: string;
  enabled: boolean;
  overlap: 'skip' | 'bufferOne';
  retention: RetentionRule | null;
  verify: boolean;
}

const columns = (f: ScheduleFields) => ({
  destination_id: f.destinationId,
  body: jsonb(f.body),
  cron: f.cron,
  timezone: f.timezone,
  enabled: f.enabled,
  overlap: f.overlap,
  retention: jsonb(f.retention),
  verify_after_backup: f.verify,
});

export function insertSchedule(
  tx: Transaction<Database>,
  teamId: string,
  environmentId: string,
  fields: ScheduleFields,
): Promise<BackupSchedule> {
  return tx
    .insertInto('backup_schedules')
    .values({
      id: newId('sch'),
      team_id: teamId,
      environment_id: environmentId,
      ...columns(fields),
      checked_until: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The schedule, locked for the rest of the transaction: changes to one schedule are made one at a time. */
export async function lockSchedule(
  tx: Transaction<Database>,
  teamId: string,
  id: string,
): Promise<BackupSchedule> {
  const row = await tx
    .selectFrom('backup_schedules')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound('schedule', id);
  return row;
}

export function updateSchedule(
  tx: Transaction<Database>,
  id: string,
  fields: ScheduleFields,
): Promise<BackupSchedule> {
  return (
    tx
      .updateTable('backup_schedules')
      // Runs due before a change are not judged by the new spec (nor while paused): the sweep starts afresh.
      .set({ ...columns(fields), updated_at: new Date(), checked_until: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow()
  );
}

export async function getSchedule(db: Db, teamId: string, id: string): Promise<BackupSchedule> {
  const row = await db
    .selectFrom('backup_schedules')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('schedule', id);
  return row;
}

export function findSchedule(db: Db, id: string): Promise<BackupSchedule | undefined> {
  return db.selectFrom('backup_schedules').selectAll().where('id', '=', id).executeTakeFirst();
}

export function listSchedules(db: Db, teamId: string, environmentId: string): Promise<BackupSchedule[]> {
  return db
    .selectFrom('backup_schedules')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('environment_id', '=', environmentId)
    .orderBy('created_at')
    .execute();
}

export function schedulesPage(
  db: Db,
  teamId: string,
  environmentId: string,
  page: PageRequest,
): Promise<Page<BackupSchedule>> {
  return keysetPage(
    db
      .selectFrom('backup_schedules')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('environment_id', '=', environmentId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

/** A run's row, made once per nominal time: a retried activity finds the one it made. */
export async function beginRun(
  db: Db,
  run: {
    scheduleId: string;
    nominalAt: Date;
    status: ScheduleRunStatus;
    operationId?: string;
    error?: string;
  },
): Promise<ScheduleRun> {
  await db
    .insertInto('schedule_runs')
    .values({
      schedule_id: run.scheduleId,
      nominal_at: run.nominalAt,
      status: run.status,
      operation_id: run.operationId ?? null,
      snapshot_id: null,
      error: run.error ?? null,
      finished_at: run.status === 'skipped' ? new Date() : null,
    })
    .onConflict((oc) => oc.columns(['schedule_id', 'nominal_at']).doNothing())
    .execute();
  return db
    .selectFrom('schedule_runs')
    .selectAll()
    .where('schedule_id', '=', run.scheduleId)
    .where('nominal_at', '=', run.nominalAt)
    .executeTakeFirstOrThrow();
}

export async function finishRun(
  db: Db,
  run: {
    scheduleId: string;
    nominalAt: Date;
    status: ScheduleRunStatus;
    snapshotId?: string;
    error?: string;
  },
): Promise<void> {
  await db
    .updateTable('schedule_runs')
    .set({
      status: run.status,
      snapshot_id: run.snapshotId ?? null,
      error: run.error ?? null,
      finished_at: new Date(),
    })
    .where('schedule_id', '=', run.scheduleId)
    .where('nominal_at', '=', run.nominalAt)
    .execute();
}

export function recentRuns(db: Db, scheduleId: string, limit = 20): Promise<ScheduleRun[]> {
  return db
    .selectFrom('schedule_runs')
    .selectAll()
    .where('schedule_id', '=', scheduleId)
    .orderBy('nominal_at', 'desc')
    .limit(limit)
    .execute();
}

const missedStatuses = ['failed', 'skipped', 'missed'] as const;
export type MissedRun = ScheduleRun & { status: (typeof missedStatuses)[number] };

/**
 * The runs that made no snapshot (failed, skipped, never started), as literals in the SQL: a prepared
 * statement's generic plan cannot use the partial index on them when they are bound parameters.
 */
export const missedStatusesSql = missedStatuses.map((s) => sql.lit(s));

/** The schedule's earliest run due after `after` (any run at all without it), if one has been recorded. */
export function firstRunAfter(db: Db, scheduleId: string, after?: Date): Promise<ScheduleRun | undefined> {
  let query = db.selectFrom('schedule_runs').selectAll().where('schedule_id', '=', scheduleId);
  if (after) query = query.where('nominal_at', '>', after);
  return query.orderBy('nominal_at').limit(1).executeTakeFirst();
}

/** Scheduled runs of an environment that made no snapshot. */
const missedOf = (db: Db, environmentId: string) =>
  db
    .selectFrom('schedule_runs')
    .innerJoin('backup_schedules', 'backup_schedules.id', 'schedule_runs.schedule_id')
    .where('backup_schedules.environment_id', '=', environmentId)
    .where('schedule_runs.status', 'in', missedStatusesSql);

/** A page of the missed runs, newest first (a run is one schedule's at one nominal time). */
export async function missedRunsPage(
  db: Db,
  environmentId: string,
  page: PageRequest,
): Promise<Page<MissedRun>> {
  return (await keysetPage(
    missedOf(db, environmentId).selectAll('schedule_runs'),
    { at: 'schedule_runs.nominal_at', id: 'schedule_runs.schedule_id' },
    page,
  )) as Page<MissedRun>;
}

/** Pauses or resumes: the saved body says so too, so that a later read shows what was saved. */
export function setScheduleEnabled(
  tx: Transaction<Database>,
  schedule: BackupSchedule,
  enabled: boolean,
): Promise<BackupSchedule> {
  return tx
    .updateTable('backup_schedules')
    .set({
      enabled,
      body: jsonb({ ...schedule.body, enabled }),
      updated_at: new Date(),
      // Runs due while paused are not missed ones: the sweep starts afresh.
      checked_until: new Date(),
    })
    .where('id', '=', schedule.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The operation of a run of the schedule still going, if one is. */
export async function runningRunOperation(db: Db, scheduleId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('schedule_runs')
    .select('operation_id')
    .where('schedule_id', '=', scheduleId)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return row?.operation_id ?? undefined;
}

/** Deletes a schedule locked by lockSchedule (its runs go with it). */
export async function deleteSchedule(db: Db, id: string): Promise<void> {
  await db.deleteFrom('backup_schedules').where('id', '=', id).execute();
}

/** What opening a scheduled run reads, in one query: the schedule, where its environment runs now, and the run a previous try of the activity recorded, if one did. */
export interface ScheduledRunContext {
  schedule: BackupSchedule;
  environmentName: string;
  serverName: string;
  serverId: string;
  serverLastSeenAt: Date | null;
  run?: {
    status: ScheduleRunStatus;
    error: string | null;
    operationId: string | null;
    workflowId: string | null;
  };
}

export async function scheduledRunContext(
  db: Db,
  scheduleId: string,
  nominalAt: Date,
): Promise<ScheduledRunContext | undefined> {
  const row = await db
    .selectFrom('backup_schedules')
    .innerJoin('environments', 'environments.id', 'backup_schedules.environment_id')
    .innerJoin('servers', 'servers.id', 'environments.server_id')
    .leftJoin('schedule_runs', (join) =>
      join
        .onRef('schedule_runs.schedule_id', '=', 'backup_schedules.id')
        .on('schedule_runs.nominal_at', '=', nominalAt),
    )
    .leftJoin('operations', 'operations.id', 'schedule_runs.operation_id')
    .selectAll('backup_schedules')
    .select([
      'environments.name as environment_name',
      'servers.name as server_name',
      'servers.id as server_id',
      'servers.last_seen_at as server_last_seen_at',
      'schedule_runs.status as run_status',
      'schedule_runs.error as run_error',
      'schedule_runs.operation_id as run_operation_id',
      'operations.workflow_id as run_workflow_id',
    ])
    .where('backup_schedules.id', '=', scheduleId)
    .executeTakeFirst();
  if (!row) return undefined;
  const {
    environment_name,
    server_name,
    server_id,
    server_last_seen_at,
    run_status,
    run_error,
    run_operation_id,
    run_workflow_id,
    ...schedule
  } = row;
  return {
    schedule,
    environmentName: environment_name,
    serverName: server_name,
    serverId: server_id,
    serverLastSeenAt: server_last_seen_at,
    run: run_status
      ? { status: run_status, error: run_error, operationId: run_operation_id, workflowId: run_workflow_id }
      : undefined,
  };
}

/**
 * A scheduled run's backup operation and its running row, in one statement: both or neither, and
 * one round trip and one commit when a thousand schedules fall due in the same second. Answers the
 * operation's id, or undefined if the run's row exists already (then neither was written).
 */
export async function openScheduledRun(
  db: Db,
  op: NewOperation,
  run: { scheduleId: string; nominalAt: Date },
): Promise<string | undefined> {
  const operation = pendingOperation(op);
  try {
    await db
      .with('operation', (q) => q.insertInto('operations').values(operation).returning('id'))
      .insertInto('schedule_runs')
      .values({
        schedule_id: run.scheduleId,
        nominal_at: run.nominalAt,
        status: 'running',
        operation_id: operation.id,
        snapshot_id: null,
        error: null,
        finished_at: null,
      })
      .execute();
  } catch (err) {
    // The run's row made meanwhile (another try, or the sweep calling it missed): nothing was written.
    if (isUniqueViolation(err, 'schedule_runs_pk')) return undefined;
    return inProgressOr(db, op.environmentId, err);
  }
  return operation.id;
}

/** The enabled schedules, which the missed-runs sweep looks at. */
export function enabledSchedules(db: Db): Promise<BackupSchedule[]> {
  return db.selectFrom('backup_schedules').selectAll().where('enabled', '=', true).execute();
}

/**
 * The nominal times (ms) of the runs recorded for each schedule after its own instant, in one
 * query: the sweep looks at every enabled schedule, and a query per schedule made it thousands.
 */
export async function runTimesAfter(
  db: Db,
  after: { scheduleId: string; at: Date }[],
): Promise<Map<string, Set<number>>> {
  const times = new Map(after.map((a) => [a.scheduleId, new Set<number>()]));
  if (after.length === 0) return times;
  // Text, not Date parameters: postgres.js sends arrays of them as text anyway, and ISO keeps the zone.
  const { rows } = await sql<{ schedule_id: string; nominal_at: Date }>`
    select r.schedule_id, r.nominal_at
    from unnest(${after.map((a) => a.scheduleId)}::text[], ${after.map((a) => a.at.toISOString())}::timestamptz[])
      as since(schedule_id, at)
    join schedule_runs r on r.schedule_id = since.schedule_id and r.nominal_at > since.at`.execute(db);
  for (const r of rows) times.get(r.schedule_id)!.add(new Date(r.nominal_at).getTime());
  return times;
}

/**
 * How far the missed-runs sweep has looked at each schedule, in one statement. Never moved back: a
 * schedule changed while the sweep ran was set to its change's time, which must stand.
 */
export async function setCheckedUntil(db: Db, checked: { scheduleId: string; at: Date }[]): Promise<void> {
  if (checked.length === 0) return;
  await sql`
    update backup_schedules s
    set checked_until = greatest(s.checked_until, u.at)
    from unnest(${checked.map((c) => c.scheduleId)}::text[], ${checked.map((c) => c.at.toISOString())}::timestamptz[])
      as u(id, at)
    where s.id = u.id`.execute(db);
}

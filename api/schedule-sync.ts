import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import { DomainError } from '../common/errors.ts';
import { scheduledBackupAction } from '../common/workflow-starts.ts';
import type { Database, Db } from '../db/database.ts';
import type { BackupSchedule } from '../db/tables/schedule.table.ts';
import type { Transaction } from 'kysely';

export interface ScheduleSyncDeps {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
}

/** Our schedule's Temporal Schedule: its id derives from ours, so either side finds the other. */
export const temporalScheduleId = (scheduleId: string) => `backup-schedule-${scheduleId}`;

const overlapPolicy = {
  skip: ScheduleOverlapPolicy.SKIP,
  bufferOne: ScheduleOverlapPolicy.BUFFER_ONE,
} as const;

/** Everything Temporal keeps of a schedule, from its row: an update replaces all of it, never merges. */
export function temporalSchedule(row: BackupSchedule, controlTaskQueue: string): ScheduleOptions {
  return {
    scheduleId: temporalScheduleId(row.id),
    spec: { cronExpressions: [row.cron], timezone: row.timezone },
    action: scheduledBackupAction(
      { id: row.id, teamId: row.team_id, environmentId: row.environment_id },
      controlTaskQueue,
    ),
    policies: { overlap: overlapPolicy[row.overlap], catchupWindow: '10 minutes', pauseOnFailure: false },
    state: { paused: !row.enabled, note: row.enabled ? undefined : 'paused in strackt' },
  };
}

/** Makes Temporal hold exactly what the row says (created, replaced or, without a row, deleted). */
async function push(deps: ScheduleSyncDeps, id: string, row: BackupSchedule | undefined): Promise<void> {
  const handle = deps.temporal.schedule.getHandle(temporalScheduleId(id));
  if (!row) {
    await handle.delete().catch((err: unknown) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    return;
  }
  const options = temporalSchedule(row, deps.controlTaskQueue);
  try {
    await handle.update(() => ({
      spec: options.spec,
      action: options.action,
      policies: options.policies,
      state: { paused: !row.enabled, note: options.state?.note },
    }));
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await deps.temporal.schedule.create(options);
  }
}

/** Temporal calls with a deadline: the client's own retries would hold the request (and the row's lock) for a minute. */
const bounded = <T>(deps: ScheduleSyncDeps, fn: () => Promise<T>) =>
  deps.temporal.connection.withDeadline(Date.now() + 10_000, fn);

const unavailable = (err: unknown) =>
  new DomainError(
    'unavailable',
    'temporal_unavailable',
    `Temporal did not accept the schedule change, nothing was changed: ${(err as Error).message}`,
  );

/**
 * Changes a schedule in Postgres and in Temporal so that a failure on either side leaves neither
 * half-changed. The row is changed in a transaction that commits only once Temporal holds the new
 * state; if Temporal refuses, or its answer is lost, or the commit fails, the transaction rolls back
 * and Temporal is given the row's previous state again (idempotent: the same update, or a delete of
 * what was never committed). Postgres is the record; Temporal is brought back in line with it.
 */
export async function changeSchedule<T>(
  deps: ScheduleSyncDeps,
  change: (tx: Transaction<Database>) => Promise<{
    id: string;
    before: BackupSchedule | undefined;
    after: BackupSchedule | undefined;
    result: T;
  }>,
): Promise<T> {
  let applied: { id: string; before: BackupSchedule | undefined } | undefined;
  try {
    return await deps.db.transaction().execute(async (tx) => {
      const { id, before, after, result } = await change(tx);
      applied = { id, before };
      await bounded(deps, () => push(deps, id, after)).catch((err: unknown) => {
        throw unavailable(err);
      });
      return result;
    });
  } catch (err) {
    const undo = applied;
    if (undo) await bounded(deps, () => push(deps, undo.id, undo.before)).catch(() => {});
    throw err;
  }
}

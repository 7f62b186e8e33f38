import { DomainError } from '../common/errors.ts';
import { operationWorkflowId } from '../common/operations.ts';
import type { Db } from '../db/database.ts';
import { createOperation } from '../db/operations.data.ts';
import { beginRun, findSchedule, finishRun } from '../db/schedules.data.ts';
import type { BackupInput } from '../workflows/backup.workflow.ts';

export type ScheduledRunStart =
  { start: true; workflowId: string; input: BackupInput } | { start: false; reason: string };

/** The database side of a scheduled backup: each run recorded with its outcome, skipped ones included. */
export function createScheduleActivities({ db }: { db: Db }) {
  return {
    /**
     * Opens the run: the operation a manual backup would have, on the server the environment runs on
     * now. A backup already running (one started by hand, say) makes this run a skipped one.
     */
    async beginScheduledRun({
      scheduleId,
      nominalAt,
    }: {
      scheduleId: string;
      nominalAt: string;
    }): Promise<ScheduledRunStart> {
      const at = new Date(nominalAt);
      const schedule = await findSchedule(db, scheduleId);
      if (!schedule) return { start: false, reason: 'the schedule was deleted' };
      const environment = await db
        .selectFrom('environments')
        .select(['server_id'])
        .where('id', '=', schedule.environment_id)
        .executeTakeFirstOrThrow();
      const known = await db
        .selectFrom('schedule_runs')
        .selectAll()
        .where('schedule_id', '=', scheduleId)
        .where('nominal_at', '=', at)
        .executeTakeFirst();
      let operationId = known?.operation_id ?? undefined;
      let workflowId: string | undefined;
      if (known?.status === 'skipped') return { start: false, reason: known.error ?? 'skipped' };
      if (operationId) {
        workflowId = (
          await db
            .selectFrom('operations')
            .select('workflow_id')
            .where('id', '=', operationId)
            .executeTakeFirstOrThrow()
        ).workflow_id;
      } else {
        workflowId = operationWorkflowId('backup', schedule.environment_id, at);
        try {
          operationId = (
            await createOperation(db, {
              teamId: schedule.team_id,
              environmentId: schedule.environment_id,
              serverId: environment.server_id,
              kind: 'backup',
              workflowId,
            })
          ).id;
        } catch (err) {
          if (!(err instanceof DomainError) || err.kind !== 'conflict') throw err;
          const reason = `skipped: ${err.message}`;
          await beginRun(db, { scheduleId, nominalAt: at, status: 'skipped', error: reason });
          return { start: false, reason };
        }
        await beginRun(db, { scheduleId, nominalAt: at, status: 'running', operationId });
      }
      return {
        start: true,
        workflowId,
        input: {
          operationId,
          teamId: schedule.team_id,
          environmentId: schedule.environment_id,
          serverId: environment.server_id,
          destinationId: schedule.destination_id,
        },
      };
    },

    async finishScheduledRun(run: {
      scheduleId: string;
      nominalAt: string;
      snapshotId?: string;
      error?: string;
    }): Promise<void> {
      await finishRun(db, {
        scheduleId: run.scheduleId,
        nominalAt: new Date(run.nominalAt),
        status: run.error ? 'failed' : 'succeeded',
        snapshotId: run.snapshotId,
        error: run.error,
      });
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;

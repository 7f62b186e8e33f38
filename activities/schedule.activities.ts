import { presenceOf } from '../common/agent-presence.ts';
import { DomainError, isUniqueViolation } from '../common/errors.ts';
import {
  operationWorkflowId,
  type BackupInput,
  type OperationLabels,
  type VerifyInput,
} from '../common/workflow-contracts.ts';
import { compileCron, nextRun } from '../common/temporal-calendar.ts';
import type { Db } from '../db/database.ts';
import { operationLabels } from '../db/environments.data.ts';
import { createOperation, operationOfWorkflow, operationRunningAt } from '../db/operations.data.ts';
import {
  beginRun,
  enabledSchedules,
  findSchedule,
  finishRun,
  openScheduledRun,
  runTimesAfter,
  scheduledRunContext,
  setCheckedUntil,
} from '../db/schedules.data.ts';
import type { BackupSchedule } from '../db/tables/schedule.table.ts';
import type { Notify } from './webhook.activities.ts';

export type ScheduledRunStart =
  | { start: true; workflowId: string; input: BackupInput; labels: OperationLabels }
  | { start: false; reason: string };

interface Deps {
  db: Db;
  notify: Notify;
  agentStaleAfterMs: number;
}

// A run's row is written by its first activity, seconds after it is due; later than this, it is missed.
const graceSeconds = 120;
// How far back a sweep looks after a long outage of the control plane itself.
const lookBackSeconds = 7 * 86_400;

/** The database side of a scheduled backup: each run recorded with its outcome, those without a snapshot told. */
export function createScheduleActivities({ db, notify, agentStaleAfterMs }: Deps) {
  async function missed(
    schedule: BackupSchedule,
    nominalAt: Date,
    status: 'skipped' | 'missed',
    reason: string,
  ) {
    await beginRun(db, { scheduleId: schedule.id, nominalAt, status, error: reason });
    await notify({
      teamId: schedule.team_id,
      event: 'backup.missed',
      subject: `${schedule.id}@${nominalAt.toISOString()}`,
      payload: {
        scheduleId: schedule.id,
        environmentId: schedule.environment_id,
        nominalAt: nominalAt.toISOString(),
        reason,
      },
    });
  }

  /** The operation of the environment that was running at an instant, if one was. */
  const runningAt = (environmentId: string, at: Date) => operationRunningAt(db, environmentId, at);

  return {
    /**
     * Opens the run: the operation a manual backup would have, on the server the environment runs on
     * now. A backup already running, or the server's agent offline, make it a skipped run, told at once.
     */
    async beginScheduledRun({
      scheduleId,
      nominalAt,
    }: {
      scheduleId: string;
      nominalAt: string;
    }): Promise<ScheduledRunStart> {
      const at = new Date(nominalAt);
      let conflict: DomainError | undefined;
      // Read again only after a conflict while opening: another try's run, or another operation running.
      for (let read = 0; read < 2; read++) {
        const context = await scheduledRunContext(db, scheduleId, at);
        if (!context) return { start: false, reason: 'the schedule was deleted' };
        const { schedule, run, serverId } = context;
        const started = (operationId: string, workflowId: string): ScheduledRunStart => ({
          start: true,
          workflowId,
          input: {
            operationId,
            teamId: schedule.team_id,
            environmentId: schedule.environment_id,
            serverId,
            destinationId: schedule.destination_id,
          },
          labels: { environmentName: context.environmentName, serverName: context.serverName },
        });
        // A retry of this activity, or a second run of a workflow whose first one was lost: the row says what was done.
        if (run) {
          if (run.status !== 'running') return { start: false, reason: run.error ?? run.status };
          if (!run.operationId || !run.workflowId) {
            throw new Error(`the operation of schedule ${scheduleId}'s run at ${nominalAt} is gone`);
          }
          return started(run.operationId, run.workflowId);
        }
        const skipped = async (reason: string): Promise<ScheduledRunStart> => {
          await missed(schedule, at, 'skipped', reason);
          return { start: false, reason };
        };
        if (conflict) return skipped(`skipped: ${conflict.message}`);
        if (!presenceOf(context.serverLastSeenAt, agentStaleAfterMs).connected)
          return skipped(`skipped: the agent of server ${context.serverName} (${serverId}) is offline`);
        const workflowId = operationWorkflowId('backup', schedule.environment_id, at);
        try {
          const operationId = await openScheduledRun(
            db,
            {
              teamId: schedule.team_id,
              environmentId: schedule.environment_id,
              serverId,
              kind: 'backup',
              workflowId,
            },
            { scheduleId, nominalAt: at },
          );
          if (operationId) return started(operationId, workflowId);
        } catch (err) {
          if (err instanceof DomainError && err.kind === 'conflict') conflict = err;
          else if (!isUniqueViolation(err)) throw err;
        }
      }
      throw new Error(
        `schedule ${scheduleId}'s run at ${nominalAt}: an operation with its workflow id exists without its run`,
      );
    },

    /**
     * For a schedule that verifies its snapshots: the verification operation of the snapshot this
     * run made, on the environment's server (one per run: a retry finds the one it made).
     */
    async scheduledVerification({
      scheduleId,
      nominalAt,
      snapshotId,
    }: {
      scheduleId: string;
      nominalAt: string;
      snapshotId: string;
    }): Promise<{ workflowId: string; input: VerifyInput; labels: OperationLabels } | undefined> {
      const schedule = await findSchedule(db, scheduleId);
      if (!schedule?.verify_after_backup) return undefined;
      const environment = await operationLabels(db, schedule.environment_id);
      const workflowId = operationWorkflowId('verify', schedule.environment_id, new Date(nominalAt));
      const operation =
        (await operationOfWorkflow(db, workflowId)) ??
        (await createOperation(db, {
          teamId: schedule.team_id,
          environmentId: schedule.environment_id,
          serverId: environment.serverId,
          kind: 'verify',
          workflowId,
        }));
      return {
        workflowId,
        input: {
          operationId: operation.id,
          teamId: schedule.team_id,
          environmentId: schedule.environment_id,
          serverId: environment.serverId,
          snapshotId,
        },
        labels: environment,
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

    /**
     * Runs that were due and never started (Temporal skipped them for overlap, the schedule was
     * paused outside strackt, Temporal or the control plane was down): found by comparing the
     * runs each enabled schedule should have made with the ones recorded, and told as missed.
     */
    async sweepMissedRuns(): Promise<{ missed: number }> {
      const now = Math.floor(Date.now() / 1000);
      const until = now - graceSeconds;
      let count = 0;
      const due = (await enabledSchedules(db))
        .map((schedule) => {
          const checked = Math.floor((schedule.checked_until ?? schedule.created_at).getTime() / 1000);
          return { schedule, from: Math.max(checked, now - lookBackSeconds) };
        })
        .filter(({ from }) => from < until);
      const recordedOf = await runTimesAfter(
        db,
        due.map(({ schedule, from }) => ({ scheduleId: schedule.id, at: new Date(from * 1000) })),
      );
      const checked: { scheduleId: string; at: Date }[] = [];
      for (const { schedule, from } of due) {
        const cron = compileCron(schedule.cron);
        const recorded = recordedOf.get(schedule.id)!;
        let checkedUntil = until;
        for (
          let t = nextRun(cron, schedule.timezone, from);
          t !== undefined && t <= until;
          t = nextRun(cron, schedule.timezone, t)
        ) {
          if (recorded.has(t * 1000)) continue;
          const at = new Date(t * 1000);
          const running = await runningAt(schedule.environment_id, at);
          // Buffered behind a backup that still runs: it will start, and record itself, when that ends.
          if (
            schedule.overlap === 'bufferOne' &&
            running &&
            (await runningAt(schedule.environment_id, new Date()))
          ) {
            checkedUntil = t - 1;
            break;
          }
          const reason = running
            ? `skipped: a ${running.kind} of this environment was still running (operation ${running.id})`
            : 'it never started: the schedule was paused in Temporal, or Temporal or the control-plane worker was not running';
          await missed(schedule, at, 'missed', reason);
          count++;
        }
        checked.push({ scheduleId: schedule.id, at: new Date(checkedUntil * 1000) });
      }
      await setCheckedUntil(db, checked);
      return { missed: count };
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;

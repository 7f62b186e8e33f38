import { ScheduleOverlapPolicy } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../common/errors.ts';
import { firstRunAfter, getSchedule, recentRuns, runningRunOperation } from '../db/schedules.data.ts';
import { temporalScheduleId, type ScheduleSyncDeps } from './schedule-sync.ts';

// A triggered run's first activity records it (and its operation) within a second or so; this bounds the
// wait for a busy worker without holding the request long. Temporal's trigger call answers nothing about
// the run it starts, so the run is found by its row: the first of the schedule due after the latest known.
const triggerWaitMs = 10_000;
const triggerPollMs = 200;

/**
 * Run now: triggers the schedule's Temporal Schedule and answers the id of the operation its run
 * started. Refused while a run goes on, whatever the overlap rule: run now starts a run at once or not
 * at all (a buffered run would have no operation to answer with).
 */
export async function runScheduleNow(
  { db, temporal }: ScheduleSyncDeps,
  teamId: string,
  id: string,
): Promise<string> {
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
  if (sameSecond > 0) await sleep(sameSecond + 50);
  // The rule is applied above; Temporal's view of a run that just ended can lag by seconds, and
  // under its own skip or buffer it would drop or delay this run.
  await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);

  let run: Awaited<ReturnType<typeof firstRunAfter>>;
  for (const deadline = Date.now() + triggerWaitMs; !run && Date.now() < deadline;) {
    run = await firstRunAfter(db, id, latest?.nominal_at);
    if (!run) await sleep(triggerPollMs);
  }
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
  return run.operation_id;
}

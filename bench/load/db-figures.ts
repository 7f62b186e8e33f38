// The bench reads its figures from the database directly, as bench/ may: asking the API would add
// to the load it measures.
import { sql } from 'kysely';
import { compileCron, nextRun } from '../../common/temporal-calendar.ts';
import type { Db } from '../../db/database.ts';

/** Marks the bench's own connections, so the count is of the control plane's alone. */
export const benchApplicationName = 'strackt-load-bench';

/** Connections to the control plane's database, by state, the bench's own left out. */
export async function pgConnections(db: Db): Promise<{ total: number; active: number }> {
  const { rows } = await sql<{ total: number; active: number }>`
    select count(*)::int as total, (count(*) filter (where state = 'active'))::int as active
    from pg_stat_activity
    where datname = current_database() and application_name <> ${benchApplicationName}`.execute(db);
  return rows[0]!;
}

/** Backups that ended in [from, to), by status, with the time from their creation to their end. */
export async function backupsEnded(db: Db, from: Date, to: Date) {
  const rows = await db
    .selectFrom('operations')
    .select(['status', 'created_at', 'finished_at'])
    .where('kind', '=', 'backup')
    .where('finished_at', '>=', from)
    .where('finished_at', '<', to)
    .execute();
  return {
    succeeded: rows.filter((r) => r.status === 'succeeded').length,
    failed: rows.filter((r) => r.status !== 'succeeded').length,
    durationsMs: rows.map((r) => r.finished_at!.getTime() - r.created_at.getTime()),
  };
}

export interface RunsAccount {
  expected: number;
  succeeded: number;
  running: number;
  /** Recorded without a snapshot (failed, skipped, missed), by reason. */
  withoutSnapshot: Map<string, number>;
  /** Due, past the sweep's grace, and not recorded at all: nothing explains them yet. */
  unrecorded: number;
}

/**
 * Every run the enabled schedules were due to make in [from, to), walked as the sweep walks them,
 * against what was recorded: a run that was due and has no row is a missed run nothing explains.
 */
export async function accountRuns(db: Db, from: Date, to: Date): Promise<RunsAccount> {
  const schedules = await db
    .selectFrom('backup_schedules')
    .select(['id', 'cron', 'timezone', 'created_at'])
    .execute();
  const runs = await db
    .selectFrom('schedule_runs')
    .select(['schedule_id', 'nominal_at', 'status', 'error'])
    .where('nominal_at', '>=', from)
    .where('nominal_at', '<', to)
    .execute();
  const recorded = new Map(runs.map((r) => [`${r.schedule_id}@${r.nominal_at.getTime()}`, r]));
  const account: RunsAccount = {
    expected: 0,
    succeeded: 0,
    running: 0,
    withoutSnapshot: new Map(),
    unrecorded: 0,
  };
  const end = Math.floor(to.getTime() / 1000);
  for (const s of schedules) {
    const cron = compileCron(s.cron);
    // A run due before its schedule was made was never owed.
    const start = Math.max(from.getTime(), s.created_at.getTime());
    for (
      let t = nextRun(cron, s.timezone, Math.ceil(start / 1000) - 1);
      t !== undefined && t < end;
      t = nextRun(cron, s.timezone, t)
    ) {
      account.expected++;
      const run = recorded.get(`${s.id}@${t * 1000}`);
      if (!run) account.unrecorded++;
      else if (run.status === 'succeeded') account.succeeded++;
      else if (run.status === 'running') account.running++;
      else {
        const reason = `${run.status}: ${(run.error ?? '').slice(0, 100)}`;
        account.withoutSnapshot.set(reason, (account.withoutSnapshot.get(reason) ?? 0) + 1);
      }
    }
  }
  return account;
}

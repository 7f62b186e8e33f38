import {
  applyRetention,
  retentionInWords,
  type RetainedSnapshot,
  type RetentionRule,
} from '../common/retention.ts';
import { localTime, simulatedRuns } from '../common/schedule-preview.ts';
import type { Db } from '../db/database.ts';
import { snapshotsForRetention } from '../db/prune.data.ts';
import type { BackupSchedule } from '../db/tables/schedule.table.ts';

/**
 * What a retention rule keeps of a schedule's snapshots, and why: the real ones (the same list the
 * prune sees) or, with simulateDays, the runs the schedule would have made over that many past days.
 */
export async function previewRetention(
  db: Db,
  schedule: Pick<BackupSchedule, 'id' | 'cron' | 'timezone'>,
  rule: RetentionRule,
  simulateDays?: number,
) {
  const series: RetainedSnapshot[] = simulateDays
    ? simulatedRuns(schedule.cron, schedule.timezone, simulateDays, Math.floor(Date.now() / 1000)).map(
        (t) => ({
          id: `simulated-${new Date(t * 1000).toISOString()}`,
          takenAt: t,
        }),
      )
    : await snapshotsForRetention(db, schedule.id);
  const decisions = applyRetention(series, rule, schedule.timezone);
  const takenAt = new Map(series.map((s) => [s.id, s.takenAt]));
  return {
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
  };
}

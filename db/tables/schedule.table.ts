import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { RetentionRule } from '../../common/retention.ts';
import type { ScheduleBody } from '../../common/schedule-spec.ts';

export interface BackupScheduleTable {
  id: string;
  team_id: string;
  environment_id: string;
  destination_id: string;
  body: ColumnType<ScheduleBody, RawBuilder<ScheduleBody>, RawBuilder<ScheduleBody>>;
  cron: string;
  timezone: string;
  enabled: boolean;
  overlap: 'skip' | 'bufferOne';
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  checked_until: Date | null;
  retention: ColumnType<
    RetentionRule | null,
    RawBuilder<RetentionRule | null>,
    RawBuilder<RetentionRule | null>
  >;
  /** Each snapshot of the schedule is verified right after its backup. */
  verify_after_backup: Generated<boolean>;
}
export type BackupSchedule = Selectable<BackupScheduleTable>;

/** `skipped`: started but not run (a backup was running, the agent offline); `missed`: never started. */
export type ScheduleRunStatus = 'running' | 'succeeded' | 'failed' | 'skipped' | 'missed';

export interface ScheduleRunTable {
  schedule_id: string;
  nominal_at: Date;
  started_at: Generated<Date>;
  status: ScheduleRunStatus;
  operation_id: string | null;
  snapshot_id: string | null;
  error: string | null;
  finished_at: Date | null;
}
export type ScheduleRun = Selectable<ScheduleRunTable>;

import type { Generated, Selectable } from 'kysely';

export interface RestoreTable {
  operation_id: string;
  team_id: string;
  environment_id: string;
  snapshot_id: string;
  target_server_id: string;
  previous_server_id: string | null;
  sealed_data_key: string | null;
  downtime_ms: number | null;
  created_at: Generated<Date>;
}
export type Restore = Selectable<RestoreTable>;

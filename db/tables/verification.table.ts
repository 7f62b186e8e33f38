import type { Generated, Selectable } from 'kysely';

/** A verification in progress: which server checks which snapshot, with the data key sealed to that server. */
export interface VerificationTable {
  operation_id: string;
  team_id: string;
  snapshot_id: string;
  server_id: string;
  sealed_data_key: string | null;
  created_at: Generated<Date>;
}
export type Verification = Selectable<VerificationTable>;

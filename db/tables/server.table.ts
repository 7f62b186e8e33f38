import type { Generated, Selectable } from 'kysely';

export interface ServerTable {
  id: string;
  team_id: string;
  name: string;
  agent_token_hash: string;
  enrolled_at: Date | null;
  last_seen_at: Date | null;
  created_at: Generated<Date>;
}
export type Server = Selectable<ServerTable>;

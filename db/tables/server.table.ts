import type { Generated, Selectable } from 'kysely';

export interface ServerTable {
  id: string;
  team_id: string;
  name: string;
  agent_token_hash: string;
  enrolled_at: Date | null;
  last_seen_at: Date | null;
  /** X25519, hex; null until the agent enrols. */
  agent_public_key: string | null;
  created_at: Generated<Date>;
}
export type Server = Selectable<ServerTable>;

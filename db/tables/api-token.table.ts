import type { Generated, Selectable } from 'kysely';

export interface ApiTokenTable {
  id: string;
  team_id: string;
  name: string;
  /** SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough and lookups stay indexed. */
  token_hash: string;
  created_at: Generated<Date>;
  last_used_at: Date | null;
}
export type ApiToken = Selectable<ApiTokenTable>;

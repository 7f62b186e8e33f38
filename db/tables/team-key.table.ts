import type { Generated, Selectable } from 'kysely';

export interface TeamKeyTable {
  team_id: string;
  public_key: Buffer;
  /** The 16-byte id every snapshot header names its key by (docs/FORMAT.md, "Keys"). */
  key_id: Buffer;
  /** The secret key lives only in the vault. */
  secret_id: string;
  created_at: Generated<Date>;
}
export type TeamKey = Selectable<TeamKeyTable>;

import type { Generated, Selectable } from 'kysely';

export interface TeamTable {
  id: string;
  name: string;
  created_at: Generated<Date>;
}
export type Team = Selectable<TeamTable>;

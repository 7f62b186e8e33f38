import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { BackupStrategy, ServiceSpec } from '../../common/environment-spec.ts';

export interface EnvironmentTable {
  id: string;
  team_id: string;
  server_id: string;
  name: string;
  services: ColumnType<ServiceSpec[], RawBuilder<ServiceSpec[]>, RawBuilder<ServiceSpec[]>>;
  backup_strategy: Generated<BackupStrategy>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
export type Environment = Selectable<EnvironmentTable>;

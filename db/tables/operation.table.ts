import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { OperationKind, OperationStatus, OperationStep } from '../../common/operations.ts';

export interface OperationTable {
  id: string;
  team_id: string;
  environment_id: string;
  server_id: string;
  kind: OperationKind;
  status: OperationStatus;
  workflow_id: string;
  steps: ColumnType<OperationStep[], RawBuilder<OperationStep[]> | undefined, RawBuilder<OperationStep[]>>;
  error: string | null;
  created_at: Generated<Date>;
  finished_at: Date | null;
}
export type Operation = Selectable<OperationTable>;

import type { ColumnType, Generated, RawBuilder, Selectable } from 'kysely';
import type { OperationKind, OperationStatus, OperationStep, Transfer } from '../../common/operations.ts';

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
  /** Live figures of the host step moving data now; null before the first. */
  transfer: ColumnType<Transfer | null, never, RawBuilder<Transfer>>;
  created_at: Generated<Date>;
  finished_at: Date | null;
}
export type Operation = Selectable<OperationTable>;

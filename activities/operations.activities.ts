import type { OperationProgress } from '../common/operations.ts';
import type { Db } from '../db/database.ts';
import { recordProgress } from '../db/operations.data.ts';

/** Control-plane activities over the database; they run in the control-plane worker, never on agents. */
export function createOperationActivities({ db }: { db: Db }) {
  return {
    async recordOperationProgress(input: {
      operationId: string;
      progress: OperationProgress;
    }): Promise<void> {
      await recordProgress(db, input.operationId, input.progress);
    },
  };
}

export type OperationActivities = ReturnType<typeof createOperationActivities>;

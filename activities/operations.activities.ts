import type { OperationProgress } from '../common/operations.ts';
import type { WebhookEvent } from '../common/webhook-events.ts';
import type { Db } from '../db/database.ts';
import { recordProgress } from '../db/operations.data.ts';
import { snapshotOfOperation } from '../db/snapshots.data.ts';
import type { Notify } from './webhook.activities.ts';

/** The webhook event an operation's end is, if any. */
function eventOf(kind: string, status: OperationProgress['status']): WebhookEvent | undefined {
  if (kind === 'backup' && status === 'succeeded') return 'backup.succeeded';
  if (kind === 'backup' && status === 'failed') return 'backup.failed';
  if (kind === 'restore' && status === 'succeeded') return 'restore.finished';
  if (kind === 'restore' && (status === 'failed' || status === 'cancelled')) return 'restore.failed';
  return undefined;
}

/** Control-plane activities over the database; they run in the control-plane worker, never on agents. */
export function createOperationActivities({ db, notify }: { db: Db; notify: Notify }) {
  return {
    /** Records progress; an operation's end is also told to the team's webhooks that listen for it. */
    async recordOperationProgress(input: {
      operationId: string;
      progress: OperationProgress;
    }): Promise<void> {
      const op = await recordProgress(db, input.operationId, input.progress);
      const event = op && eventOf(op.kind, input.progress.status);
      if (!op || !event) return;
      // An "all good" ping says what it made.
      const snapshot = event === 'backup.succeeded' ? await snapshotOfOperation(db, op.id) : undefined;
      await notify({
        teamId: op.team_id,
        event,
        subject: op.id,
        payload: {
          operationId: op.id,
          kind: op.kind,
          status: op.status,
          environmentId: op.environment_id,
          serverId: op.server_id,
          workflowId: op.workflow_id,
          error: op.error,
          ...(snapshot && { snapshotId: snapshot.id, sizeBytes: Number(snapshot.size_bytes) }),
        },
      });
    },
  };
}

export type OperationActivities = ReturnType<typeof createOperationActivities>;

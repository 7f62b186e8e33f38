import type { Client } from '@temporalio/client';
import type { Context } from 'hono';
import { DomainError } from '../common/errors.ts';
import { activeStatuses, type OperationKind } from '../common/operations.ts';
import {
  operationWorkflowId,
  type OperationInput,
  type OperationInputOf,
} from '../common/workflow-contracts.ts';
import { startOperationWorkflow } from '../common/workflow-starts.ts';
import type { Db } from '../db/database.ts';
import { operationLabels } from '../db/environments.data.ts';
import { createOperation, recordProgress } from '../db/operations.data.ts';
import type { Operation } from '../db/tables/operation.table.ts';

export interface OperationStarterDeps {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
}

/** What a kind's workflow takes beyond the operation's own ids, such as a backup's destination. */
export type OperationExtra<K extends OperationKind> = Omit<OperationInputOf<K>, keyof OperationInput>;

/**
 * Records the operation first (the unique index makes a concurrent one a 409), then starts its
 * workflow, findable in the Temporal UI by team, environment, server and kind.
 */
export async function startOperation<K extends OperationKind>(
  { db, temporal, controlTaskQueue }: OperationStarterDeps,
  target: { teamId: string; environmentId: string; serverId: string; kind: K },
  extra: OperationExtra<K>,
): Promise<Operation> {
  const workflowId = operationWorkflowId(target.kind, target.environmentId, new Date());
  const op = await createOperation(db, { ...target, workflowId });
  const input: OperationInput = {
    operationId: op.id,
    teamId: target.teamId,
    environmentId: target.environmentId,
    serverId: target.serverId,
  };
  try {
    // The operation's ids and the kind's own (typed per kind by the caller) make the kind's input.
    const kindInput = { ...input, ...extra } as OperationInputOf<K>;
    const labels = await operationLabels(db, target.environmentId, target.serverId);
    await startOperationWorkflow({ temporal, controlTaskQueue }, target.kind, workflowId, kindInput, labels);
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : '';
    const message = `could not start the ${target.kind}: Temporal did not accept the workflow (${(err as Error).message}${cause ? `: ${cause}` : ''})`;
    await recordProgress(db, op.id, { status: 'failed', steps: [], error: message });
    throw new DomainError('unavailable', 'temporal_unavailable', message);
  }
  return op;
}

/**
 * The bytes the running step has moved so far, from its agent's heartbeats: only while the operation
 * runs, and only if reported since the running step started (not a finished step's last figures).
 */
function liveTransfer(op: Operation) {
  const t = op.transfer;
  const running = op.steps.find((s) => s.status === 'running');
  if (!t || !activeStatuses.includes(op.status) || !running?.startedAt) return null;
  if (Date.parse(t.at) < Date.parse(running.startedAt)) return null;
  return { ...t, stepName: running.name };
}

/** The answer to a request that started an operation: 202, the operation, and where to follow it. */
export function operationStarted(c: Context, op: Operation) {
  c.header('location', `/operations/${op.id}`);
  return c.json(presentOperation(op), 202);
}

export function presentOperation(op: Operation) {
  return {
    id: op.id,
    kind: op.kind,
    status: op.status,
    environmentId: op.environment_id,
    serverId: op.server_id,
    workflowId: op.workflow_id,
    steps: op.steps,
    transfer: liveTransfer(op),
    error: op.error,
    createdAt: op.created_at.toISOString(),
    finishedAt: op.finished_at?.toISOString() ?? null,
  };
}

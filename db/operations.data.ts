import { DomainError, isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { activeStatuses, type OperationKind, type OperationProgress } from '../common/operations.ts';
import type { Db } from './database.ts';
import { jsonb } from './jsonb.ts';
import type { Operation } from './tables/operation.table.ts';

export interface NewOperation {
  teamId: string;
  environmentId: string;
  serverId: string;
  kind: OperationKind;
  workflowId: string;
}

export const operationInProgress = (op: Pick<Operation, 'id' | 'kind'>) =>
  new DomainError(
    'conflict',
    'operation_in_progress',
    `a ${op.kind} of this environment is already running: operation ${op.id}`,
  );

export async function activeOperation(db: Db, environmentId: string): Promise<Operation | undefined> {
  return db
    .selectFrom('operations')
    .selectAll()
    .where('environment_id', '=', environmentId)
    .where('status', 'in', activeStatuses)
    .executeTakeFirst();
}

/** Inserts a pending operation; the partial unique index turns a concurrent second one into a 409. */
export async function createOperation(db: Db, op: NewOperation): Promise<Operation> {
  try {
    return await db
      .insertInto('operations')
      .values({
        id: newId('op'),
        team_id: op.teamId,
        environment_id: op.environmentId,
        server_id: op.serverId,
        kind: op.kind,
        status: 'pending',
        workflow_id: op.workflowId,
        error: null,
        finished_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    if (isUniqueViolation(err, 'operations_one_active_per_environment')) {
      const running = await activeOperation(db, op.environmentId);
      if (running) throw operationInProgress(running);
    }
    throw err;
  }
}

export async function getOperation(db: Db, teamId: string, id: string): Promise<Operation> {
  const op = await db
    .selectFrom('operations')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!op) throw notFound('operation', id);
  return op;
}

export async function listOperations(
  db: Db,
  teamId: string,
  environmentId: string,
  limit = 50,
): Promise<Operation[]> {
  return db
    .selectFrom('operations')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('environment_id', '=', environmentId)
    .orderBy('created_at', 'desc')
    .limit(limit)
    .execute();
}

/** Records progress and answers the operation as it now stands. */
export async function recordProgress(
  db: Db,
  id: string,
  progress: OperationProgress,
): Promise<Operation | undefined> {
  const done = !activeStatuses.includes(progress.status);
  return db
    .updateTable('operations')
    .set({
      status: progress.status,
      steps: jsonb(progress.steps),
      error: progress.error ?? null,
      finished_at: done ? new Date() : null,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

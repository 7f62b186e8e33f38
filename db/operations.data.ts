import { DomainError, isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import {
  activeStatuses,
  type OperationKind,
  type OperationProgress,
  type OperationStatus,
  type Transfer,
} from '../common/operations.ts';
import type { Db } from './database.ts';
import { dropVerificationAccess } from './verifications.data.ts';
import { jsonb } from './jsonb.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
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

export const pendingOperation = (op: NewOperation) => ({
  id: newId('op'),
  team_id: op.teamId,
  environment_id: op.environmentId,
  server_id: op.serverId,
  kind: op.kind,
  status: 'pending' as const,
  workflow_id: op.workflowId,
  error: null,
  finished_at: null,
});

/** An insert of a pending operation failed: a second active one on the environment becomes a 409. */
export async function inProgressOr(db: Db, environmentId: string, err: unknown): Promise<never> {
  if (isUniqueViolation(err, 'operations_one_active_per_environment')) {
    const running = await activeOperation(db, environmentId);
    if (running) throw operationInProgress(running);
  }
  throw err;
}

/** Inserts a pending operation; the partial unique index turns a concurrent second one into a 409. */
export async function createOperation(db: Db, op: NewOperation): Promise<Operation> {
  try {
    return await db
      .insertInto('operations')
      .values(pendingOperation(op))
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    return inProgressOr(db, op.environmentId, err);
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

export interface OperationFilter {
  kind?: OperationKind;
  status?: OperationStatus;
  environmentId?: string;
  serverId?: string;
  /** Made at or after this instant. */
  since?: Date;
}

/** A page of the team's operations that pass every filter given, newest first. */
export function operationsPage(
  db: Db,
  teamId: string,
  filter: OperationFilter,
  page: PageRequest,
): Promise<Page<Operation>> {
  let query = db.selectFrom('operations').selectAll().where('team_id', '=', teamId);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.environmentId) query = query.where('environment_id', '=', filter.environmentId);
  if (filter.serverId) query = query.where('server_id', '=', filter.serverId);
  if (filter.since) query = query.where('created_at', '>=', filter.since);
  return keysetPage(query, { at: 'created_at', id: 'id' }, page);
}

/** Records progress and answers the operation as it now stands. */
export async function recordProgress(
  db: Db,
  id: string,
  progress: OperationProgress,
): Promise<Operation | undefined> {
  const done = !activeStatuses.includes(progress.status);
  const op = await db
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
  // However an operation ends, a data key it sealed to a verifying server is of no more use.
  if (done) await dropVerificationAccess(db, id);
  return op;
}

/**
 * Records the bytes a running operation's host step has moved, with its rate (smoothed over the
 * reports of the same step) and the time left when the total is known.
 */
export async function recordTransfer(
  db: Db,
  workflowId: string,
  step: string,
  figures: { bytes: number; totalBytes: number | null },
  now = new Date(),
): Promise<{ transfer: Transfer; previousAt?: string } | undefined> {
  const op = await db
    .selectFrom('operations')
    .select(['id', 'transfer'])
    .where('workflow_id', '=', workflowId)
    .where('status', 'in', activeStatuses)
    .executeTakeFirst();
  if (!op) return undefined;
  const prev = op.transfer?.step === step ? op.transfer : null;
  const seconds = prev ? (now.getTime() - Date.parse(prev.at)) / 1000 : 0;
  const instant = prev && seconds > 0 ? Math.max(0, figures.bytes - prev.bytes) / seconds : null;
  // Parts land whole, so the instant rate jumps: half of each new reading keeps it readable.
  const bytesPerSecond =
    instant === null
      ? (prev?.bytesPerSecond ?? null)
      : prev?.bytesPerSecond == null
        ? instant
        : (instant + prev.bytesPerSecond) / 2;
  const left = figures.totalBytes === null ? null : Math.max(0, figures.totalBytes - figures.bytes);
  const transfer: Transfer = {
    step,
    ...figures,
    bytesPerSecond: bytesPerSecond === null ? null : Math.round(bytesPerSecond),
    etaSeconds: left === null || !bytesPerSecond ? null : Math.ceil(left / bytesPerSecond),
    at: now.toISOString(),
  };
  await db
    .updateTable('operations')
    .set({ transfer: jsonb(transfer) })
    .where('id', '=', op.id)
    .execute();
  return { transfer, ...(prev && { previousAt: prev.at }) };
}

/** The operation of the environment that was running at an instant, if one was. */
export function operationRunningAt(db: Db, environmentId: string, at: Date) {
  return db
    .selectFrom('operations')
    .select(['id', 'kind'])
    .where('environment_id', '=', environmentId)
    .where('created_at', '<=', at)
    .where((eb) => eb.or([eb('finished_at', 'is', null), eb('finished_at', '>=', at)]))
    .executeTakeFirst();
}

/** The operation a workflow id is recorded for, if one is. */
export function operationOfWorkflow(db: Db, workflowId: string): Promise<Operation | undefined> {
  return db.selectFrom('operations').selectAll().where('workflow_id', '=', workflowId).executeTakeFirst();
}

// The one place outside workflows/ that starts workflows and makes Temporal Schedules start them: each
// typed by its workflow's contract (common/workflow-contracts.ts), its id and search attributes
// computed there. Child workflows are started in workflows/ with the workflow function and the same
// contract helpers (operationStart, pruneStart).
import type { Client, ScheduleOptionsStartWorkflowAction, WorkflowHandle } from '@temporalio/client';
import type { OperationKind } from './operations.ts';
import {
  missedBackupsWorkflowId,
  operationStart,
  operationWorkflows,
  pruneStart,
  scheduledBackupWorkflowId,
  searchAttributes,
  webhookWorkflowId,
  type OperationInputOf,
  type OperationLabels,
  type OperationWorkflow,
  type PruneTarget,
  type WorkflowContracts,
} from './workflow-contracts.ts';

export interface WorkflowStarterDeps {
  temporal: Client;
  controlTaskQueue: string;
}

/** Starts an operation's workflow (see operationStart); the caller has recorded the operation. */
export async function startOperationWorkflow<K extends OperationKind>(
  { temporal, controlTaskQueue }: WorkflowStarterDeps,
  kind: K,
  workflowId: string,
  input: OperationInputOf<K>,
  labels: OperationLabels,
): Promise<WorkflowHandle<OperationWorkflow<K>>> {
  // operationStart types the input per kind; TypeScript cannot follow a generic kind into the SDK's
  // options type, so the start itself is typed by the workflow's name only.
  const handle = await temporal.workflow.start(operationWorkflows[kind], {
    taskQueue: controlTaskQueue,
    ...operationStart(kind, workflowId, input, labels),
  });
  return handle as WorkflowHandle<OperationWorkflow<K>>;
}

/**
 * Starts a prune (pruneSnapshots) of a schedule's retention or of one snapshot deleted by hand, asked
 * for now. Two asked for in the same millisecond get one id: the second joins the running one, whose
 * answer is what it would have done.
 */
export async function startPrune(
  { temporal, controlTaskQueue }: WorkflowStarterDeps,
  target: PruneTarget,
  askedAt = new Date(),
): Promise<WorkflowHandle<WorkflowContracts['pruneSnapshots']>> {
  return temporal.workflow.start<WorkflowContracts['pruneSnapshots']>('pruneSnapshots', {
    taskQueue: controlTaskQueue,
    workflowIdConflictPolicy: 'USE_EXISTING',
    ...pruneStart(target, askedAt.toISOString()),
  });
}

/**
 * Starts one webhook delivery (deliverWebhook), found with the team's other workflows; its id is the
 * delivery's, so a second start of it is refused (WorkflowExecutionAlreadyStartedError).
 */
export async function startWebhookDelivery(
  { temporal, controlTaskQueue }: WorkflowStarterDeps,
  delivery: { teamId: string; deliveryId: string },
): Promise<WorkflowHandle<WorkflowContracts['deliverWebhook']>> {
  return temporal.workflow.start<WorkflowContracts['deliverWebhook']>('deliverWebhook', {
    taskQueue: controlTaskQueue,
    workflowId: webhookWorkflowId(delivery.deliveryId),
    args: [{ deliveryId: delivery.deliveryId }],
    typedSearchAttributes: searchAttributes({ teamId: delivery.teamId }),
  });
}

/** A backup schedule's action: each run a scheduledBackup workflow, found by the schedule's team and environment. */
export function scheduledBackupAction(
  schedule: { id: string; teamId: string; environmentId: string },
  controlTaskQueue: string,
): ScheduleOptionsStartWorkflowAction<WorkflowContracts['scheduledBackup']> {
  return {
    type: 'startWorkflow',
    workflowType: 'scheduledBackup',
    taskQueue: controlTaskQueue,
    workflowId: scheduledBackupWorkflowId(schedule.id),
    args: [{ scheduleId: schedule.id }],
    typedSearchAttributes: searchAttributes({
      teamId: schedule.teamId,
      environmentId: schedule.environmentId,
      operation: 'backup',
    }),
  };
}

/** The strackt-missed-backups schedule's action: a watchMissedBackups run. */
export function missedBackupsAction(
  controlTaskQueue: string,
): ScheduleOptionsStartWorkflowAction<WorkflowContracts['watchMissedBackups']> {
  return {
    type: 'startWorkflow',
    workflowType: 'watchMissedBackups',
    taskQueue: controlTaskQueue,
    workflowId: missedBackupsWorkflowId,
    args: [],
  };
}

// Every workflow's contract: its name, what it takes and answers, its workflow id and its search
// attributes. Workflow-safe (types and pure functions only): imported by workflows, activities, the API
// and the worker alike. The workflows implement these signatures (workflows/index.ts checks it), and
// every start goes through common/workflow-starts.ts or, for child workflows, `childOf` here.
import type { SearchAttributePair } from '@temporalio/common';
import type { OperationKind } from './operations.ts';
import {
  environmentAttribute,
  operationAttribute,
  serverAttribute,
  teamAttribute,
} from './search-attributes.ts';

/** The one object every operation workflow takes: ids only, never secrets (history is stored in clear). */
export interface OperationInput {
  operationId: string;
  teamId: string;
  environmentId: string;
  serverId: string;
}

export interface BackupInput extends OperationInput {
  destinationId: string;
}

export interface BackupResult {
  snapshotId: string;
}

export interface RestoreInput extends OperationInput {
  /** `serverId` is the target: the original server or any other connected server of the team. */
  snapshotId: string;
}

export interface RestoreResult {
  downtimeMs: number;
}

/** `serverId` is the server whose agent streams and checks the snapshot. */
export interface VerifyInput extends OperationInput {
  snapshotId: string;
  /** Format 2: the percentage of the snapshot's packs read, chosen at random (all when absent). */
  subset?: number;
}

/** How a verification ended for the snapshot: 'ok', or what is wrong with it. */
export type VerificationOutcome =
  { result: 'ok'; entries: number; bytes: number } | { result: 'missing' | 'failed'; error: string };

export interface PruneInput {
  /** Applies this schedule's retention rule to the snapshots its runs made. */
  scheduleId?: string;
  /** Snapshots already marked for deletion (deleted by hand). */
  snapshotIds?: string[];
}

export interface PruneResult {
  deleted: string[];
}

export interface ScheduledBackupInput {
  scheduleId: string;
}

export interface ScheduledBackupResult {
  snapshotId?: string;
}

export interface DeliverWebhookInput {
  deliveryId: string;
}

/**
 * Every workflow by its name, which lives in histories and schedules and never changes: the key is
 * the workflow function's name (workflows/index.ts checks each function has this signature).
 */
export interface WorkflowContracts {
  deployEnvironment: (input: OperationInput) => Promise<void>;
  stopEnvironment: (input: OperationInput) => Promise<void>;
  backupEnvironment: (input: BackupInput) => Promise<BackupResult>;
  restoreEnvironment: (input: RestoreInput) => Promise<RestoreResult>;
  verifySnapshot: (input: VerifyInput) => Promise<VerificationOutcome>;
  pruneSnapshots: (input: PruneInput) => Promise<PruneResult>;
  scheduledBackup: (input: ScheduledBackupInput) => Promise<ScheduledBackupResult>;
  watchMissedBackups: () => Promise<{ missed: number }>;
  deliverWebhook: (input: DeliverWebhookInput) => Promise<void>;
}

export type WorkflowName = keyof WorkflowContracts;

/** The signal the API sends an operation's workflow with its running host step's figures (a Transfer). */
export const transferSignalName = 'transfer';

/** The workflow of each kind of tracked operation. */
export const operationWorkflows = {
  deploy: 'deployEnvironment',
  stop: 'stopEnvironment',
  backup: 'backupEnvironment',
  restore: 'restoreEnvironment',
  verify: 'verifySnapshot',
} as const satisfies Record<OperationKind, WorkflowName>;

export type OperationWorkflow<K extends OperationKind> = WorkflowContracts[(typeof operationWorkflows)[K]];
export type OperationInputOf<K extends OperationKind> = Parameters<OperationWorkflow<K>>[0];

// Workflow ids: readable, and searched by prefix in the Temporal UI and by tests; keep their formats.

/** An operation's: the kind, the environment and the UTC time, e.g. deploy-env_x-20261126T040500.123Z. */
export function operationWorkflowId(kind: OperationKind, environmentId: string, at: Date): string {
  return `${kind}-${environmentId}-${at.toISOString().replace(/[-:]/g, '')}`;
}

/**
 * A prune's: what it prunes (a schedule's retention, or a snapshot deleted by hand) and when it was
 * asked for, as RFC 3339 (a scheduled run's nominal time, so each run prunes once), e.g.
 * prune-sch_x-2026-11-26T04:05:00Z or prune-snap_x-2026-11-26T09:12:44.120Z.
 */
export function pruneWorkflowId(subjectId: string, at: string): string {
  return `prune-${subjectId}-${at}`;
}

/** A backup schedule's runs: Temporal appends each run's nominal time (RFC 3339) to this. */
export const scheduledBackupWorkflowId = (scheduleId: string) => `scheduled-backup-${scheduleId}`;

/** The nominal time a scheduled run's id ends with (see scheduledBackupWorkflowId), if it does. */
export function nominalTimeOf(workflowId: string): string | undefined {
  return /-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/.exec(workflowId)?.[1];
}

/** The runs of the strackt-missed-backups schedule. */
export const missedBackupsWorkflowId = 'strackt-missed-backups';

/** One webhook delivery's (one per delivery: a second start of it is refused). */
export const webhookWorkflowId = (deliveryId: string) => `webhook-${deliveryId}`;

/**
 * The search attributes a workflow is found by in the Temporal UI and `temporal workflow list`:
 * its team always, and its environment, server and operation kind where it has them.
 */
export function searchAttributes(of: {
  teamId: string;
  environmentId?: string;
  serverId?: string;
  operation?: OperationKind;
}): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [{ key: teamAttribute, value: of.teamId }];
  if (of.environmentId) pairs.push({ key: environmentAttribute, value: of.environmentId });
  if (of.serverId) pairs.push({ key: serverAttribute, value: of.serverId });
  if (of.operation) pairs.push({ key: operationAttribute, value: of.operation });
  return pairs;
}

/** The names an operation is known by, for the Temporal UI (ids alone say little to a person). */
export interface OperationLabels {
  environmentName: string;
  /** The server it runs on: a restore's target, a verification's reader. */
  serverName: string;
}

/** The Temporal UI's one line for an operation: what, of which environment, where. */
export function operationSummary<K extends OperationKind>(
  kind: K,
  input: OperationInputOf<K>,
  labels: OperationLabels,
): string {
  const env = `${labels.environmentName} on ${labels.serverName}`;
  const { snapshotId: snapshot, destinationId } = input as Partial<RestoreInput & BackupInput>;
  if (kind === 'backup') return `backup of ${env} to ${destinationId}`;
  if (kind === 'restore') return `restore of ${snapshot} onto ${env}`;
  if (kind === 'verify')
    return `verification of ${snapshot} of ${labels.environmentName}, read by ${labels.serverName}`;
  return `${kind} ${env}`;
}

/** Its page's details (Markdown): every id of the input by name, and where the API shows it. */
export function operationDetails(input: OperationInput, labels: OperationLabels): string {
  const rows = Object.entries(input).map(([name, id]) => `| ${name} | \`${String(id)}\` |`);
  return [
    `**${labels.environmentName}** on **${labels.serverName}**`,
    '',
    '| | |',
    '|---|---|',
    ...rows,
    '',
    `Progress: \`GET /operations/${input.operationId}\` (and \`/events\`) in the strackt API.`,
  ].join('\n');
}

/**
 * How an operation's workflow is started, as a workflow or as a child: its id, input, search
 * attributes, and the summary and details the Temporal UI shows.
 */
export function operationStart<K extends OperationKind>(
  kind: K,
  workflowId: string,
  input: OperationInputOf<K>,
  labels: OperationLabels,
): {
  workflowId: string;
  args: [OperationInputOf<K>];
  typedSearchAttributes: SearchAttributePair[];
  staticSummary: string;
  staticDetails: string;
} {
  return {
    workflowId,
    args: [input],
    typedSearchAttributes: searchAttributes({
      teamId: input.teamId,
      environmentId: input.environmentId,
      serverId: input.serverId,
      operation: kind,
    }),
    staticSummary: operationSummary(kind, input, labels),
    staticDetails: operationDetails(input, labels),
  };
}

/** What a prune deletes: a schedule's retention, or one snapshot deleted by hand. */
export type PruneTarget = { teamId: string; environmentId: string } & (
  { scheduleId: string } | { snapshotId: string }
);

/** How a prune is started, as a workflow or as a child; `at` is when it was asked for (RFC 3339). */
export function pruneStart(
  target: PruneTarget,
  at: string,
): { workflowId: string; args: [PruneInput]; typedSearchAttributes: SearchAttributePair[] } {
  const subject = 'scheduleId' in target ? target.scheduleId : target.snapshotId;
  return {
    workflowId: pruneWorkflowId(subject, at),
    args: ['scheduleId' in target ? { scheduleId: target.scheduleId } : { snapshotIds: [target.snapshotId] }],
    typedSearchAttributes: searchAttributes({ teamId: target.teamId, environmentId: target.environmentId }),
  };
}

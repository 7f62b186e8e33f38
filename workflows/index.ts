import type { WorkflowContracts } from '../common/workflow-contracts.ts';
import { backupEnvironment } from './backup.workflow.ts';
import { deployEnvironment, stopEnvironment } from './environment.workflows.ts';
import { pruneSnapshots } from './prune.workflow.ts';
import { restoreEnvironment } from './restore.workflow.ts';
import { scheduledBackup, watchMissedBackups } from './scheduled-backup.workflow.ts';
import { verifySnapshot } from './verify.workflow.ts';
import { deliverWebhook } from './webhook.workflow.ts';

// The worker registers every function exported here under its name.
export {
  backupEnvironment,
  deployEnvironment,
  stopEnvironment,
  pruneSnapshots,
  restoreEnvironment,
  verifySnapshot,
  scheduledBackup,
  watchMissedBackups,
  deliverWebhook,
};

type Implements<T extends U, U> = T;
/**
 * Each workflow takes and answers what its contract (common/workflow-contracts.ts) says, by which
 * every start outside workflows/ is typed: a workflow that drifts from its contract does not compile.
 */
export type Workflows = Implements<
  {
    backupEnvironment: typeof backupEnvironment;
    deployEnvironment: typeof deployEnvironment;
    stopEnvironment: typeof stopEnvironment;
    pruneSnapshots: typeof pruneSnapshots;
    restoreEnvironment: typeof restoreEnvironment;
    verifySnapshot: typeof verifySnapshot;
    scheduledBackup: typeof scheduledBackup;
    watchMissedBackups: typeof watchMissedBackups;
    deliverWebhook: typeof deliverWebhook;
  },
  WorkflowContracts
>;

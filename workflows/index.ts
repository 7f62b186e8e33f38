export { backupEnvironment } from './backup.workflow.ts';
export { deployEnvironment, stopEnvironment } from './environment.workflows.ts';
export { pruneSnapshots } from './prune.workflow.ts';
export { restoreEnvironment } from './restore.workflow.ts';
export { verifySnapshot } from './verify.workflow.ts';
export { scheduledBackup, watchMissedBackups } from './scheduled-backup.workflow.ts';
export { deliverWebhook } from './webhook.workflow.ts';

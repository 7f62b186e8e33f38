export { backupEnvironment } from './backup.workflow.ts';
export { deployEnvironment, stopEnvironment } from './environment.workflows.ts';
export { restoreEnvironment } from './restore.workflow.ts';
export { scheduledBackup } from './scheduled-backup.workflow.ts';

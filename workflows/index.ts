export { backupEnvironment } from './backup.workflow.ts';
export { deployEnvironment, stopEnvironment } from './environment.workflows.ts';

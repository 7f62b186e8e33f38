export { deployEnvironment, stopEnvironment } from './environment.workflows.ts';

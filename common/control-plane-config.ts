import { z } from 'zod';
import { port, positiveSeconds } from './config.ts';
import { defaultControlTaskQueue } from './task-queues.ts';

/** Variables of the control plane's programs (API, worker, migrator, bootstrap). */
export const controlPlaneConfig = {
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/.+\/.+/, 'must be postgres://user@host:port/database'),
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('strackt'),
  STRACKT_CONTROL_TASK_QUEUE: z.string().min(1).default(defaultControlTaskQueue),
  // Temporal re-issues an idle long poll every 60 s by default; 75 s leaves slack for one late poll.
  AGENT_STALE_AFTER_SECONDS: positiveSeconds.default(75),
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port.default(8080),
};

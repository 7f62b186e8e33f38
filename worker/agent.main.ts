import { Worker } from '@temporalio/worker';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { createRuntimeActivities } from '../activities/runtime.activities.ts';
import { loadOrCreateAgentKey } from '../agent/agent-key.ts';
import { ControlPlaneClient } from '../agent/control-plane-client.ts';
import { ProcessRuntime } from '../agent/process-runtime.ts';
import { RateLimit } from '../agent/rate-limit.ts';
import { settleInterruptedCaptures } from '../agent/snapshot-capture.ts';
import { exitOnConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { connectWorker } from '../common/temporal-connection.ts';

const log = createLogger('agent');
const config = exitOnConfigError('strackt-agent', () =>
  loadConfig({
    STRACKT_API_URL: z.url(),
    STRACKT_AGENT_TOKEN: z.string().regex(/^sta_[A-Za-z0-9_-]+$/, 'must be an agent token (sta_...)'),
    STRACKT_DATA_ROOT: z.string().refine(isAbsolute, 'must be an absolute path'),
    TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d+$/, 'must be host:port')
      .default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('strackt'),
    /** A cap on the agent's upload bandwidth, in MiB/s; unset: as fast as the link goes. */
    STRACKT_UPLOAD_MIB_PER_SECOND: z.coerce.number().positive().optional(),
    /** The same for downloads (restores, verifications). */
    STRACKT_DOWNLOAD_MIB_PER_SECOND: z.coerce.number().positive().optional(),
  }),
);

let worker: Worker;
try {
  const controlPlane = new ControlPlaneClient(config.STRACKT_API_URL, config.STRACKT_AGENT_TOKEN);
  const agentKey = await loadOrCreateAgentKey(config.STRACKT_DATA_ROOT);
  const identity = await controlPlane.hello(agentKey.publicKey).catch((err: Error) => {
    throw new Error(
      `enrolment with the control plane at ${config.STRACKT_API_URL} (STRACKT_API_URL) failed: ${err.message}`,
    );
  });
  const runtime = new ProcessRuntime(config.STRACKT_DATA_ROOT);
  // A previous agent killed during a capture may have left services paused: resume them first.
  await runtime.thawAll();
  // ...and one killed while it had services stopped or post hooks to run owes those still.
  await settleInterruptedCaptures(runtime, controlPlane);
  const connection = await connectWorker(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    // Only this server's queue: host-bound work for other servers can never land here.
    taskQueue: identity.taskQueue,
    identity: `agent:${identity.serverName}:${identity.serverId}:${process.pid}`,
    activities: createRuntimeActivities({
      runtime,
      controlPlane,
      serverId: identity.serverId,
      agentKey,
      uploadLimit:
        config.STRACKT_UPLOAD_MIB_PER_SECOND === undefined
          ? undefined
          : new RateLimit(config.STRACKT_UPLOAD_MIB_PER_SECOND * 1024 * 1024),
      downloadLimit:
        config.STRACKT_DOWNLOAD_MIB_PER_SECOND === undefined
          ? undefined
          : new RateLimit(config.STRACKT_DOWNLOAD_MIB_PER_SECOND * 1024 * 1024),
    }),
  });
  log.info('polling', {
    serverId: identity.serverId,
    taskQueue: identity.taskQueue,
    dataRoot: config.STRACKT_DATA_ROOT,
  });
} catch (err) {
  console.error(`strackt-agent: cannot start: ${(err as Error).message}`);
  process.exit(1);
}
await worker.run();

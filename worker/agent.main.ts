import { isAbsolute } from 'node:path';
import { loadOrCreateAgentKey } from '../agent/agent-key.ts';
import { ControlPlaneClient } from '../agent/control-plane-client.ts';
import { createHostSteps } from '../agent/host-steps.ts';
import { ProcessRuntime } from '../agent/process-runtime.ts';
import { RateLimit } from '../agent/rate-limit.ts';
import { settleInterruptedCaptures } from '../agent/snapshot-capture.ts';
import { TaskRunner } from '../agent/task-runner.ts';
import { exitOnConfigError, loadConfig, logLevel } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import * as z from '../common/zod-mini.ts';

const config = exitOnConfigError('strackt-agent', () =>
  loadConfig({
    STRACKT_API_URL: z.url(),
    STRACKT_AGENT_TOKEN: z
      .string()
      .check(z.regex(/^sta_[A-Za-z0-9_-]+$/, 'must be an agent token (sta_...)')),
    STRACKT_DATA_ROOT: z._default(
      z.string().check(z.refine(isAbsolute, 'must be an absolute path')),
      '/var/lib/strackt-agent',
    ),
    /** A cap on the agent's upload bandwidth, in MiB/s; unset: as fast as the link goes. */
    STRACKT_UPLOAD_MIB_PER_SECOND: z.optional(z.coerce.number().check(z.positive())),
    /** The same for downloads (restores, verifications). */
    STRACKT_DOWNLOAD_MIB_PER_SECOND: z.optional(z.coerce.number().check(z.positive())),
    LOG_LEVEL: logLevel,
  }),
);
const log = createLogger('agent', { level: config.LOG_LEVEL });

const mibPerSecond = (value: number | undefined) =>
  value === undefined ? undefined : new RateLimit(value * 1024 * 1024);

let runner: TaskRunner;
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
  await settleInterruptedCaptures(runtime, controlPlane, log);
  runner = new TaskRunner(
    controlPlane,
    createHostSteps({
      runtime,
      controlPlane,
      serverId: identity.serverId,
      agentKey,
      uploadLimit: mibPerSecond(config.STRACKT_UPLOAD_MIB_PER_SECOND),
      downloadLimit: mibPerSecond(config.STRACKT_DOWNLOAD_MIB_PER_SECOND),
    }),
    log,
  );
  log.info(
    {
      serverId: identity.serverId,
      server: identity.serverName,
      api: config.STRACKT_API_URL,
      dataRoot: config.STRACKT_DATA_ROOT,
    },
    'polling',
  );
} catch (err) {
  console.error(`strackt-agent: cannot start: ${(err as Error).message}`);
  process.exit(1);
}

// Services run in process groups of their own and outlive the agent by design: stopping polls is all.
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    stop.abort();
    process.exit(0);
  });
await runner.run(stop.signal);

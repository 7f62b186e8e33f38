import { z } from 'zod';
import { loadConfig, logLevel, port, positiveSeconds, withHelp } from './config.ts';
import { parseOutboundAllow } from './outbound-guard.ts';
import { defaultControlTaskQueue } from './task-queues.ts';
import { temporalConfig, temporalTarget } from './temporal-config.ts';

/** Variables of the control plane's programs (API, worker, migrator, bootstrap). */
export const controlPlaneConfig = {
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/.+\/.+/, 'must be postgres://user@host:port/database'),
  ...temporalConfig,
  STRACKT_CONTROL_TASK_QUEUE: z.string().min(1).default(defaultControlTaskQueue),
  // An agent silent this long is offline; the API holds its long polls for a third of it (25 s).
  AGENT_STALE_AFTER_SECONDS: z._default(positiveSeconds, 75),
  // The format new backups are written in (docs/FORMAT.md): 2, deduplicated; 1, a whole archive each
  // time, is still written on request, and snapshots of both are listed, restored, verified and pruned.
  STRACKT_SNAPSHOT_FORMAT: z
    .enum(['1', '2'])
    .default('2')
    .transform((v) => Number(v) as 1 | 2),
  API_HOST: z.string().default('127.0.0.1'),
  // Private addresses a team's webhooks, buckets and receivers may use (common/outbound-guard.ts).
  STRACKT_OUTBOUND_ALLOW: z
    .string()
    .default('')
    .transform((text, ctx) => {
      try {
        return parseOutboundAllow(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  API_PORT: z._default(port, 8080),
  // The Temporal Web UI's address as people open it (http://127.0.0.1:8233 under `npm start`): the
  // backups page links each operation to its workflow's page there. Unset, the page shows the workflow id.
  STRACKT_TEMPORAL_UI_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .transform((text) => text.replace(/\/+$/, ''))
    .optional(),
  LOG_LEVEL: logLevel,
  VAULT_MASTER_KEY: withHelp(
    z
      .string()
      // 32 bytes are 44 base64 characters, the last one padding: anything else is a truncated copy.
      .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be the base64 of exactly 32 bytes')
      .transform((text) => Buffer.from(text, 'base64')),
    'Create one with `head -c 32 /dev/urandom | base64` (or put it in a 0600 file named by ' +
      'VAULT_MASTER_KEY_FILE) and keep a copy apart from the database: it encrypts every team key and ' +
      'credential strackt stores, so losing it makes all of them unreadable, and backups stay decryptable ' +
      'only with the team keys customers saved.',
  ),
};

/** The API's and the control-plane worker's variables, with the Temporal connection they describe. */
export function loadControlPlaneConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(controlPlaneConfig, env);
  return { ...config, temporal: temporalTarget(config) };
}

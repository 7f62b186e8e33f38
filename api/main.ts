// First: the routes call .openapi() on schemas of common/, which zod gives only to schemas made after
// @hono/zod-openapi has extended it, and the app's imports load that before anything else does.
import { createApp } from './app.ts';
import { serve } from '@hono/node-server';
import { exitOnConfigError } from '../common/config.ts';
import { loadControlPlaneConfig } from '../common/control-plane-config.ts';
import { allowOutbound } from '../common/outbound-guard.ts';
import { createLogger } from '../common/log.ts';
import { connectClient } from '../common/temporal-connection.ts';
import { ensureDatabase } from '../db/connection-check.ts';
import { createTaskSignals } from '../db/agent-task-signals.ts';
import { createDb } from '../db/database.ts';
import { destinationStores } from '../db/destination-stores.ts';
import { migrateToLatest } from '../db/migrator.ts';
import { Vault } from '../db/vault.ts';

/** What a stopping API process gives its connections to close before it exits anyway. */
const shutdownDeadlineMs = 10_000;

const config = exitOnConfigError('strackt-api', () => loadControlPlaneConfig());
const log = createLogger('api', { level: config.LOG_LEVEL });
allowOutbound(config.STRACKT_OUTBOUND_ALLOW);

try {
  // Both dependencies are checked before anything is changed, so a bad address changes nothing.
  await ensureDatabase(config.DATABASE_URL);
  const temporal = await connectClient(config.temporal);
  const db = createDb(config.DATABASE_URL);
  await migrateToLatest(db);
  const taskSignals = createTaskSignals(config.DATABASE_URL);
  const vault = new Vault(config.VAULT_MASTER_KEY);
  const app = createApp({
    db,
    vault,
    storeOf: destinationStores(db, vault),
    temporal,
    controlTaskQueue: config.STRACKT_CONTROL_TASK_QUEUE,
    agentStaleAfterMs: config.AGENT_STALE_AFTER_SECONDS * 1000,
    taskSignals,
    log,
    temporalUiUrl: config.STRACKT_TEMPORAL_UI_URL,
  });
  const server = serve({ fetch: app.fetch, hostname: config.API_HOST, port: config.API_PORT }, (info) =>
    log.info({ url: `http://${info.address}:${info.port}` }, 'listening'),
  );
  const shutdown = () => {
    server.close();
    // A bound on closing the pools: after an hour under load one API process closed none of them on
    // SIGTERM and never exited (found by bench:load; the cause is not known), which holds up a restart.
    setTimeout(() => process.exit(0), shutdownDeadlineMs).unref();
    void Promise.allSettled([db.destroy(), taskSignals.close(), temporal.connection.close()]).then(() =>
      process.exit(0),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (err) {
  console.error(`strackt-api: cannot start: ${(err as Error).message}`);
  process.exit(1);
}

import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createControlPlaneActivities } from '../activities/control-plane.activities.ts';
import { exitOnConfigError } from '../common/config.ts';
import { loadControlPlaneConfig } from '../common/control-plane-config.ts';
import { allowOutbound } from '../common/outbound-guard.ts';
import { createLogger } from '../common/log.ts';
import { connectClient, connectWorker } from '../common/temporal-connection.ts';
import { ensureDatabase } from '../db/connection-check.ts';
import { createDb, type Db } from '../db/database.ts';
import { destinationStores } from '../db/destination-stores.ts';
import { Vault } from '../db/vault.ts';
import { controlWorkerTuning } from './control-worker-tuning.ts';
import { ensureMissedBackupsWatch } from './missed-backups-watch.ts';
import { installTemporalLogging } from './temporal-logging.ts';

const config = exitOnConfigError('strackt-worker', () => loadControlPlaneConfig());
const log = createLogger('worker', { level: config.LOG_LEVEL });
installTemporalLogging(log, config.LOG_LEVEL);
allowOutbound(config.STRACKT_OUTBOUND_ALLOW);

let worker: Worker;
let connection: NativeConnection;
let temporal: Client;
let db: Db;
try {
  await ensureDatabase(config.DATABASE_URL);
  db = createDb(config.DATABASE_URL);
  const vault = new Vault(config.VAULT_MASTER_KEY);
  connection = await connectWorker(config.temporal);
  // A client as well: a restore asks Temporal whether an agent still polls its queue.
  temporal = await connectClient(config.temporal);
  worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.STRACKT_CONTROL_TASK_QUEUE,
    workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
    ...controlWorkerTuning,
    activities: createControlPlaneActivities({
      db,
      vault,
      storeOf: destinationStores(db, vault),
      temporal,
      agentStaleAfterMs: config.AGENT_STALE_AFTER_SECONDS * 1000,
      controlTaskQueue: config.STRACKT_CONTROL_TASK_QUEUE,
      snapshotFormat: config.STRACKT_SNAPSHOT_FORMAT,
    }),
  });
  await ensureMissedBackupsWatch(temporal, config.STRACKT_CONTROL_TASK_QUEUE);
} catch (err) {
  console.error(`strackt-worker: cannot start: ${(err as Error).message}`);
  process.exit(1);
}
log.info({ taskQueue: config.STRACKT_CONTROL_TASK_QUEUE }, 'polling');
// Worker.run() handles SIGINT/SIGTERM itself: it drains in-flight tasks, then resolves.
await worker.run();
// The client's channel and the database pool would keep the process alive after the worker has drained,
// and so would the worker's connection: while it is open, Temporal's runtime forwards core's logs.
await Promise.all([connection.close(), temporal.connection.close(), db.destroy()]);

import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { controlWorkerTuning } from '../../worker/control-worker-tuning.ts';
import postgres from 'postgres';
import { createControlPlaneActivities } from '../../activities/control-plane.activities.ts';
import { allowOutbound, parseOutboundAllow } from '../../common/outbound-guard.ts';
import { createDb, type Db } from '../../db/database.ts';
import { migrateToLatest } from '../../db/migrator.ts';
import type { Vault } from '../../db/vault.ts';
import type { StoreOf } from '../../storage/destination-store.ts';

// Beside the services: programs that run before the stack is up (pg-temporal.main.ts) use them too.
export { freePort, freePorts } from './free-ports.ts';
export { waitFor } from './wait-for.ts';

/** The real services deploy/test.sh started for this run. */
function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(
      `${name} is not set: run the tests through \`npm test\` (deploy/test.sh), which starts the services`,
    );
  return value;
}

/**
 * The private addresses the test stack's control planes may reach: its stand-ins all live on this
 * machine (the object store, webhook and receiver programs on loopback, receivers in network
 * namespaces on 10.123.0.0/16). Set for every test process, as the programs' configuration sets it.
 */
export const stackOutboundAllow = '127.0.0.0/8,10.123.0.0/16';
allowOutbound(parseOutboundAllow(stackOutboundAllow));

export const stack = {
  temporalAddress: required('STRACKT_TEST_TEMPORAL_ADDRESS'),
  namespace: 'strackt',
  pgBaseUrl: required('STRACKT_TEST_PG_BASE_URL'),
  agentStaleAfterSeconds: Number(required('STRACKT_TEST_AGENT_STALE_AFTER_SECONDS')),
  runDir: required('STRACKT_TEST_RUN_DIR'),
  s3: {
    endpoint: process.env.STRACKT_TEST_S3_ENDPOINT ?? '',
    accessKeyId: process.env.STRACKT_TEST_S3_ACCESS_KEY ?? '',
    secretAccessKey: process.env.STRACKT_TEST_S3_SECRET_KEY ?? '',
  },
};

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A fresh, migrated database per test file, dropped at the end. */
export async function createTestDatabase(): Promise<{ db: Db; url: string; drop: () => Promise<void> }> {
  const name = `strackt_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(`${stack.pgBaseUrl}/postgres`, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = `${stack.pgBaseUrl}/${name}`;
  const db = createDb(url, { max: 5 });
  await migrateToLatest(db);
  return {
    db,
    url,
    drop: async () => {
      await db.destroy();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export async function connectTestClient(address = stack.temporalAddress): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace: stack.namespace });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let runtimeInstalled = false;

/** The real workflows on a task queue of this test file's own, so parallel files never steal each other's work. */
export async function startControlWorker(
  db: Db,
  vault: Vault,
  storeOf: StoreOf,
  taskQueue: string,
  address = stack.temporalAddress,
  snapshotFormat: 1 | 2 = 2,
): Promise<{ shutdown: () => Promise<void> }> {
  if (!runtimeInstalled) {
    // Worker state chatter drowns test output; warnings and errors still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  bundle ??= bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  const connection = await NativeConnection.connect({ address });
  const temporal = await connectTestClient(address);
  const worker = await Worker.create({
    connection,
    namespace: stack.namespace,
    taskQueue,
    ...controlWorkerTuning,
    workflowBundle: await bundle,
    activities: createControlPlaneActivities({
      db,
      vault,
      storeOf,
      temporal,
      agentStaleAfterMs: stack.agentStaleAfterSeconds * 1000,
      controlTaskQueue: taskQueue,
      snapshotFormat,
    }),
  });
  const running = worker.run();
  return {
    shutdown: async () => {
      worker.shutdown();
      await running;
      await connection.close();
      await temporal.connection.close();
    },
  };
}

import { randomBytes } from 'node:crypto';
import { noteAnswer } from './api-answers.ts';
import { apiCalls, apiRequest } from './control-plane.ts';
import { runProgram, type ProgramRun } from './processes.ts';
import {
  connectTestClient,
  createTestDatabase,
  freePort,
  stack,
  stackOutboundAllow,
  uniqueName,
  waitFor,
} from './stack.ts';

/**
 * The control plane as it is deployed: the API (api/main.ts) and the workflow worker
 * (worker/control-plane.main.ts) as processes of their own on the real services, so a test can kill
 * either with SIGKILL and start it again. The API keeps its port across restarts, as agents know it
 * by its URL. `temporalAddress` lets a test bring its own Temporal server, `snapshotFormat` sets the
 * format backups are written in; `runApi` and `runWorker` start more replicas of either on the same
 * database and task queue.
 */
export async function startControlPlanePrograms({
  temporalAddress = stack.temporalAddress,
  snapshotFormat = undefined as 1 | 2 | undefined,
} = {}) {
  const testDb = await createTestDatabase();
  const temporal = await connectTestClient(temporalAddress);
  const controlTaskQueue = uniqueName('control');
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const config = {
    DATABASE_URL: testDb.url,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: stack.namespace,
    STRACKT_CONTROL_TASK_QUEUE: controlTaskQueue,
    AGENT_STALE_AFTER_SECONDS: String(stack.agentStaleAfterSeconds),
    API_PORT: String(port),
    VAULT_MASTER_KEY: randomBytes(32).toString('base64'),
    STRACKT_OUTBOUND_ALLOW: stackOutboundAllow,
    ...(snapshotFormat && { STRACKT_SNAPSHOT_FORMAT: String(snapshotFormat) }),
  };

  /** An API process on `apiPort`; resolves once it answers. */
  async function startApi(apiPort = port): Promise<ProgramRun> {
    const run = runProgram('api/main.ts', { ...config, API_PORT: String(apiPort) });
    await waitFor(
      'the API to answer',
      async () => {
        if (run.child.exitCode !== null) throw new Error(`the API exited: ${run.output()}`);
        return (await fetch(`http://127.0.0.1:${apiPort}/healthz`).catch(() => undefined))?.ok;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    return run;
  }

  /** Resolves once the worker polls its task queue: it bundles the workflows first, which takes seconds. */
  async function startWorker(env: Record<string, string> = {}): Promise<ProgramRun> {
    const run = runProgram('worker/control-plane.main.ts', { ...config, ...env });
    await waitFor(
      'the control-plane worker to poll',
      async () => {
        if (run.child.exitCode !== null) throw new Error(`the worker exited: ${run.output()}`);
        return run.output().includes('"msg":"polling"');
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    return run;
  }

  // Only the test's own calls are noted here: the agents' reach the API process directly.
  const request = apiRequest(async (path, init) => {
    const url = new URL(path, apiUrl);
    const res = await fetch(url, init);
    noteAnswer(init.method ?? 'GET', url.pathname, res.status);
    return res;
  });

  const programs = { api: await startApi(), worker: await startWorker() };
  return {
    db: testDb.db,
    temporal,
    controlTaskQueue,
    apiUrl,
    /** The programs' environment, for a test that runs one more of them. */
    config,
    programs,
    ...apiCalls(testDb.db, apiUrl, request),
    /** Kills the API process with SIGKILL: no connection is closed cleanly, held polls just break. */
    async killApi(): Promise<void> {
      await programs.api.kill('SIGKILL');
    },
    /** Starts the API again on the same port; resolves once it answers. */
    async startApi(): Promise<void> {
      programs.api = await startApi();
    },
    async killWorker(): Promise<void> {
      await programs.worker.kill('SIGKILL');
    },
    /** Starts the worker again (with `env` over the programs' environment); resolves once it polls. */
    async startWorker(env: Record<string, string> = {}): Promise<void> {
      programs.worker = await startWorker(env);
    },
    /** One more API process, on `apiPort`, beside the first; the caller stops it. */
    runApi: (apiPort: number) => startApi(apiPort),
    /** One more worker on the same task queue; the caller stops it. */
    runWorker: (env: Record<string, string> = {}) => startWorker(env),
    async stop() {
      await Promise.all([programs.api.kill(), programs.worker.kill()]);
      await temporal.connection.close();
      await testDb.drop();
    },
  };
}

export type ControlPlanePrograms = Awaited<ReturnType<typeof startControlPlanePrograms>>;

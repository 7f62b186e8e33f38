import { randomBytes } from 'node:crypto';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createApp } from '../../api/app.ts';
import { Vault } from '../../db/vault.ts';
import { serveApp } from './processes.ts';
import {
  connectTestClient,
  createTestDatabase,
  stack,
  startControlWorker,
  uniqueName,
  waitFor,
} from './stack.ts';

export interface Operation {
  id: string;
  status: string;
  steps: { name: string; status: string; error?: string }[];
  error: string | null;
  workflowId: string;
}

/** The whole control plane on the real services: database, Temporal client, workflow worker, HTTP API. */
/** `temporalAddress` lets a test bring its own Temporal server, to stop and restart it. */
export async function startControlPlane({ temporalAddress = stack.temporalAddress } = {}) {
  const testDb = await createTestDatabase();
  const temporal = await connectTestClient(temporalAddress);
  const controlTaskQueue = uniqueName('control');
  const vault = new Vault(randomBytes(32));
  const worker = await startControlWorker(testDb.db, vault, controlTaskQueue, temporalAddress);
  const app = createApp({
    db: testDb.db,
    vault,
    temporal,
    controlTaskQueue,
    agentStaleAfterMs: stack.agentStaleAfterSeconds * 1000,
    log: (msg, err) => console.error(msg, err),
  });
  const api = await serveApp(app);

  async function request<T = unknown>(method: string, path: string, token: string, body?: unknown) {
    const res = await app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  return {
    db: testDb.db,
    dbUrl: testDb.url,
    vault,
    temporal,
    app,
    apiUrl: api.url,
    request,
    /** Polls GET /operations/:id until the operation ends. */
    async finished(token: string, operationId: string, timeoutMs = 120_000): Promise<Operation> {
      return waitFor(
        `operation ${operationId} to end`,
        async () => {
          const { body } = await request<Operation>('GET', `/operations/${operationId}`, token);
          return ['succeeded', 'failed', 'cancelled'].includes(body.status) ? body : undefined;
        },
        { timeoutMs, intervalMs: 300 },
      );
    },
    async connected(token: string, serverId: string): Promise<void> {
      await waitFor(`server ${serverId} to show as connected`, async () => {
        const { body } = await request<{ connected: boolean }>('GET', `/servers/${serverId}`, token);
        return body.connected;
      });
    },
    /** Stops every environment's services on an agent's data root, so a failed test leaves nothing running. */
    async stopServices(dataRoot: string): Promise<void> {
      const runtime = new ProcessRuntime(dataRoot);
      for (const env of await testDb.db.selectFrom('environments').select('id').execute())
        await runtime.stop(env.id);
    },
    async stop() {
      await api.close();
      await worker.shutdown();
      await temporal.connection.close();
      await testDb.drop();
    },
  };
}

export type ControlPlane = Awaited<ReturnType<typeof startControlPlane>>;

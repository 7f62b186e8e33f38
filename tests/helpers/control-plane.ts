import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createApp } from '../../api/app.ts';
import { createLogger, type LogDestination } from '../../common/log.ts';
import { createS3Client } from '../../common/s3-client.ts';
import { createTaskSignals } from '../../db/agent-task-signals.ts';
import type { Db } from '../../db/database.ts';
import { destinationStores } from '../../db/destination-stores.ts';
import { Vault } from '../../db/vault.ts';
import { createServer } from '../../db/servers.data.ts';
import { notingAnswers } from './api-answers.ts';
import { serveApp, startAgent, type ProgramRun } from './processes.ts';
import { httpService } from './services.ts';
import {
  connectTestClient,
  createTestDatabase,
  freePort,
  freePorts,
  stack,
  startControlWorker,
  uniqueName,
  waitFor,
} from './stack.ts';

/** A client for the test object store with its root credentials. */
export const stackS3 = () => createS3Client({ ...stack.s3, region: 'us-east-1', forcePathStyle: true });

export interface Operation {
  id: string;
  status: string;
  steps: {
    name: string;
    status: string;
    error?: string;
    bytes?: number;
    startedAt?: string;
    endedAt?: string;
    note?: string;
  }[];
  error: string | null;
  workflowId: string;
}

/** A server of a team with a real agent process on its own data root. */
export interface AgentServer {
  id: string;
  agentToken: string;
  root: string;
  agent: ProgramRun;
}

/** An error answer of the API. */
export interface ApiError {
  error: { code: string; message: string; field?: string };
}

/** One API call as a test makes it: method, path, bearer token, JSON body; the answer parsed. */
export type ApiRequest = <T = unknown>(
  method: string,
  path: string,
  token: string,
  body?: unknown,
) => Promise<{ status: number; body: T }>;

/** API calls with a bearer token and a JSON body, however the request reaches the API. */
export function apiRequest(
  send: (path: string, init: RequestInit) => Response | Promise<Response>,
): ApiRequest {
  return async <T>(method: string, path: string, token: string, body?: unknown) => {
    const res = await send(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/** What tests do through the API, whether it runs in the test's process or as a program of its own. */
export function apiCalls(db: Db, apiUrl: string, request: ApiRequest) {
  /** Polls GET /operations/:id until the operation ends. */
  async function finished(token: string, operationId: string, timeoutMs = 120_000): Promise<Operation> {
    return waitFor(
      `operation ${operationId} to end`,
      async () => {
        const { body } = await request<Operation>('GET', `/operations/${operationId}`, token);
        return ['succeeded', 'failed', 'cancelled'].includes(body.status) ? body : undefined;
      },
      { timeoutMs, intervalMs: 300 },
    );
  }

  async function connected(token: string, serverId: string): Promise<void> {
    await waitFor(`server ${serverId} to show as connected`, async () => {
      const { body } = await request<{ connected: boolean }>('GET', `/servers/${serverId}`, token);
      return body.connected;
    });
  }

  return {
    request,
    finished,
    connected,
    /** A new server of the team with its agent started (on `root`, with `env`), once it shows as connected. */
    async addServer(
      token: string,
      teamId: string,
      name: string,
      {
        root = join(stack.runDir, uniqueName(name)),
        env = {},
      }: { root?: string; env?: Record<string, string> } = {},
    ): Promise<AgentServer> {
      const created = await createServer(db, teamId, name);
      const server = {
        id: created.server.id,
        agentToken: created.agentToken,
        root,
        agent: startAgent(apiUrl, created.agentToken, root, env),
      };
      await connected(token, server.id);
      return server;
    },
    /** Creates and deploys an environment of one web service (httpService, with `extra` over it): its id. */
    async deployWebEnvironment(
      token: string,
      serverId: string,
      extra: Record<string, unknown> = {},
    ): Promise<string> {
      const env = await request<{ id: string }>('POST', '/environments', token, {
        name: uniqueName('web'),
        serverId,
        services: [{ ...httpService(await freePort()), ...extra }],
      });
      if (env.status !== 201) throw new Error(`environment: ${JSON.stringify(env.body)}`);
      const deploy = await request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
      const done = await finished(token, deploy.body.id);
      if (done.status !== 'succeeded') throw new Error(`deploy failed: ${JSON.stringify(done)}`);
      return env.body.id;
    },
    /** A deployed environment whose one service holds 384 MiB of random bytes: an upload long enough to interrupt. */
    async deployMediaEnvironment(
      token: string,
      serverId: string,
      dataRoot: string,
    ): Promise<{ envId: string; media: string }> {
      const [port] = (await freePorts(1)) as [number];
      const env = await request<{ id: string }>('POST', '/environments', token, {
        name: uniqueName('media'),
        serverId,
        services: [httpService(port)],
      });
      const deploy = await request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
      const done = await finished(token, deploy.body.id);
      if (done.status !== 'succeeded') throw new Error(`deploy failed: ${JSON.stringify(done)}`);
      const media = join(dataRoot, 'volumes', env.body.id, 'webdata');
      for (let i = 0; i < 6; i++)
        await writeFile(join(media, `clip-${i}.bin`), randomBytes(64 * 1024 * 1024));
      return { envId: env.body.id, media };
    },
    /** A bucket of its own on the test object store, added as a destination; the first one gives the team key. */
    async addDestination(
      token: string,
    ): Promise<{ destinationId: string; bucket: string; teamKey?: string }> {
      const bucket = uniqueName('backups');
      await stackS3().send(new CreateBucketCommand({ Bucket: bucket }));
      const created = await request<{ destination: { id: string }; teamKey?: { secretKey: string } }>(
        'POST',
        '/destinations',
        token,
        {
          name: bucket,
          endpoint: stack.s3.endpoint,
          region: 'us-east-1',
          bucket,
          prefix: 'strackt',
          pathStyle: true,
          accessKeyId: stack.s3.accessKeyId,
          secretAccessKey: stack.s3.secretAccessKey,
        },
      );
      if (created.status !== 201) throw new Error(`destination: ${JSON.stringify(created.body)}`);
      return { destinationId: created.body.destination.id, bucket, teamKey: created.body.teamKey?.secretKey };
    },
    /** Backs an environment up now and resolves with the snapshot, failing the test if the backup fails. */
    async backUp(
      token: string,
      envId: string,
      destinationId: string,
    ): Promise<{ id: string; sizeBytes: number; objects: { data: string; manifest: string } }> {
      const started = await request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
        destinationId,
      });
      if (started.status !== 202) throw new Error(`backup: ${JSON.stringify(started.body)}`);
      const done = await finished(token, started.body.id, 180_000);
      if (done.status !== 'succeeded') throw new Error(`backup failed: ${JSON.stringify(done)}`);
      const { body } = await request<{
        snapshots: { id: string; sizeBytes: number; objects: { data: string; manifest: string } }[];
      }>('GET', `/environments/${envId}/snapshots`, token);
      return body.snapshots[0]!;
    },
    /** Starts a backup and resolves with its operation id once the upload is under way. */
    async backupUnderWay(token: string, envId: string, destinationId: string): Promise<string> {
      const started = await request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
        destinationId,
      });
      await waitFor('the upload to start', async () => {
        const { body } = await request<Operation>('GET', `/operations/${started.body.id}`, token);
        return body.steps.find((s) => s.name === 'capture and upload')?.status === 'running';
      });
      return started.body.id;
    },
    /** Stops every environment's services on an agent's data root, so a failed test leaves nothing running. */
    async stopServices(dataRoot: string): Promise<void> {
      const runtime = new ProcessRuntime(dataRoot);
      for (const env of await db.selectFrom('environments').select('id').execute())
        await runtime.stop(env.id);
    },
  };
}

/**
 * The whole control plane on the real services: database, Temporal client, workflow worker, HTTP API.
 * `temporalAddress` lets a test bring its own Temporal server, to stop and restart it; `apiHost` is
 * the address the API listens on (loopback unless agents in a network namespace must reach it), and
 * `apiUrl` where agents reach it. `apiLog` receives the API's log lines, every level.
 */
export async function startControlPlane({
  temporalAddress = stack.temporalAddress,
  apiHost = '127.0.0.1',
  temporalUiUrl = undefined as string | undefined,
  apiLog = undefined as LogDestination | undefined,
  snapshotFormat = 2 as 1 | 2,
} = {}) {
  const testDb = await createTestDatabase();
  const temporal = await connectTestClient(temporalAddress);
  const controlTaskQueue = uniqueName('control');
  const vault = new Vault(randomBytes(32));
  const storeOf = destinationStores(testDb.db, vault);
  const worker = await startControlWorker(
    testDb.db,
    vault,
    storeOf,
    controlTaskQueue,
    temporalAddress,
    snapshotFormat,
  );
  const taskSignals = createTaskSignals(testDb.url);
  const app = notingAnswers(
    createApp({
      db: testDb.db,
      vault,
      storeOf,
      temporal,
      controlTaskQueue,
      agentStaleAfterMs: stack.agentStaleAfterSeconds * 1000,
      taskSignals,
      // Every line, down to debug, when a test reads the log; else warnings and errors on stdout.
      log: apiLog
        ? createLogger('api', { level: 'debug', destination: apiLog })
        : createLogger('api', { level: 'warn' }),
      temporalUiUrl,
    }),
  );
  const api = await serveApp(app, apiHost);

  const request = apiRequest((path, init) => app.request(path, init));

  return {
    db: testDb.db,
    dbUrl: testDb.url,
    vault,
    storeOf,
    temporal,
    controlTaskQueue,
    taskSignals,
    app,
    apiUrl: api.url,
    ...apiCalls(testDb.db, api.url, request),
    async stop() {
      await api.close();
      await worker.shutdown();
      await taskSignals.close();
      await temporal.connection.close();
      await testDb.drop();
    },
  };
}

export type ControlPlane = Awaited<ReturnType<typeof startControlPlane>>;

import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
// First of the helpers: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { type AgentServer, type Operation } from '../helpers/control-plane.ts';
import { startControlPlanePrograms, type ControlPlanePrograms } from '../helpers/control-plane-programs.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createTeam } from '../../db/teams.data.ts';

// An installation that wrote format 1 upgraded to format 2: its worker started again with
// STRACKT_SNAPSHOT_FORMAT=2, as a deploy of the new version does. The snapshots taken before stay
// listed, verifiable and restorable beside the new ones, and each restores on its own.

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

interface Snapshot {
  id: string;
  formatVersion: number;
  objects: { data: string | null; manifest: string };
}

let cp: ControlPlanePrograms;
let server: AgentServer;
let token = '';
let envId = '';
let destinationId = '';
const volume = (name: string) => new ProcessRuntime(server.root).volumePath(envId, name);

async function succeeded(started: { status: number; body: { id: string } }): Promise<Operation> {
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const op = await cp.finished(token, started.body.id, 180_000);
  assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
  return op;
}

async function backUp(): Promise<Snapshot> {
  await succeeded(await cp.request('POST', `/environments/${envId}/backups`, token, { destinationId }));
  const { body } = await cp.request<{ snapshots: Snapshot[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    token,
  );
  return body.snapshots[0]!;
}

/** Every file of the environment's volume `data`, by path. */
async function files(): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const path of ['base/table', 'base/new', 'app.log'])
    out[path] = await readFile(join(volume('data'), path)).catch(() => Buffer.alloc(0));
  return out;
}

before(async () => {
  cp = await startControlPlanePrograms({ snapshotFormat: 1 });
  const team = await createTeam(cp.db, 'upgrade');
  token = team.token;
  server = await cp.addServer(token, team.team.id, 'web-1');
  ({ destinationId } = await cp.addDestination(token));
  const env = await cp.request<{ id: string }>('POST', '/environments', token, {
    name: 'shop',
    serverId: server.id,
    services: [
      { name: 'db', command: 'sleep 600', volumes: ['data'], stopSignal: 'SIGTERM', stopTimeoutSeconds: 5 },
    ],
  });
  assert.equal(env.status, 201, JSON.stringify(env.body));
  envId = env.body.id;
  await succeeded(await cp.request('POST', `/environments/${envId}/deploy`, token));
});

after(async () => {
  await server?.agent.kill();
  if (server) await cp?.stopServices(server.root);
  await cp?.stop();
  if (server) await rm(server.root, { recursive: true, force: true });
});

it('restores and verifies a format-1 snapshot taken before the upgrade to format 2, beside the new ones', async () => {
  await mkdir(join(volume('data'), 'base'), { recursive: true });
  await writeFile(join(volume('data'), 'base/table'), noise(3 * 1024 * 1024, 1));
  await writeFile(join(volume('data'), 'app.log'), 'GET / 200\n'.repeat(50_000));
  const old = await backUp();
  assert.equal(old.formatVersion, 1);
  assert.ok(old.objects.data, 'a format-1 snapshot has its data object');
  const atOld = await files();

  await cp.programs.worker.kill();
  await cp.startWorker({ STRACKT_SNAPSHOT_FORMAT: '2' });
  await writeFile(join(volume('data'), 'base/table'), noise(3 * 1024 * 1024, 2));
  await writeFile(join(volume('data'), 'base/new'), noise(512 * 1024, 3));
  const upgraded = await backUp();
  assert.equal(upgraded.formatVersion, 2);
  assert.equal(upgraded.objects.data, null, 'format 2 keeps its chunks in packs');
  const atUpgraded = await files();
  assert.notDeepEqual(atUpgraded, atOld);

  const { body } = await cp.request<{ snapshots: Snapshot[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    token,
  );
  assert.deepEqual(
    body.snapshots.map((s) => [s.id, s.formatVersion]),
    [
      [upgraded.id, 2],
      [old.id, 1],
    ],
  );
  for (const snapshot of [old, upgraded])
    await succeeded(await cp.request('POST', `/snapshots/${snapshot.id}/verify`, token, {}));

  // Each restores on its own, over data that differs from it.
  const restore = (snapshotId: string) =>
    cp.request<{ id: string }>('POST', `/environments/${envId}/restores`, token, {
      snapshotId,
      targetServerId: server.id,
    });
  await succeeded(await restore(old.id));
  assert.deepEqual(await files(), atOld, 'the format-1 snapshot brought back the data as it was then');
  await succeeded(await restore(upgraded.id));
  assert.deepEqual(
    await files(),
    atUpgraded,
    'the format-2 snapshot brought back the data after the upgrade',
  );
});

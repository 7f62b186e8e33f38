import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createCipheriv } from 'node:crypto';
import { appendFile, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { stackS3, startControlPlane, type ControlPlane, type Operation } from '../helpers/control-plane.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { auditRestoredBank } from '../helpers/bank-proof.ts';
import { restoreWithKitV2 } from '../helpers/restore-kit-v2.ts';
import { ledgerService, postgresService } from '../helpers/services.ts';
import { freePorts, stack, uniqueName } from '../helpers/stack.ts';
import { openBank, startTransfers } from '../helpers/transfers.ts';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

interface Snapshot {
  id: string;
  formatVersion: number;
  sizeBytes: number;
  entries: number;
  objects: { data: string | null; manifest: string };
}

/**
 * Backups in format 2 through the whole control plane (STRACKT_SNAPSHOT_FORMAT=2): the backup
 * operation, a real agent process, the object store; listed as format 2, each later backup storing
 * only what changed, and restorable from the bucket and the team key alone.
 */
describe('format-2 backups through the backup operation', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  const dir = join(stack.runDir, uniqueName('backup-format2'));
  const dataRoot = join(dir, 'agent');
  const ids = { team: '', env: '', destination: '', bucket: '', server: '' };
  let token = '';
  let secretKey = '';
  const volume = (name: string) => new ProcessRuntime(dataRoot).volumePath(ids.env, name);

  async function backUp(): Promise<{ snapshot: Snapshot; operation: Operation }> {
    const started = await cp.request<{ id: string }>('POST', `/environments/${ids.env}/backups`, token, {
      destinationId: ids.destination,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const operation = await cp.finished(token, started.body.id, 180_000);
    assert.equal(operation.status, 'succeeded', JSON.stringify(operation));
    const { body } = await cp.request<{ snapshots: Snapshot[] }>(
      'GET',
      `/environments/${ids.env}/snapshots`,
      token,
    );
    return { snapshot: body.snapshots[0]!, operation };
  }

  const note = (op: Operation) => op.steps.find((s) => s.name === 'capture and upload')?.note ?? '';

  before(async () => {
    cp = await startControlPlane({ snapshotFormat: 2 });
    const created = await createTeam(cp.db, 'format2');
    ids.team = created.team.id;
    token = created.token;
    const destination = await cp.addDestination(token);
    Object.assign(ids, { destination: destination.destinationId, bucket: destination.bucket });
    secretKey = destination.teamKey!;
    const server = await createServer(cp.db, ids.team, 'web-1');
    ids.server = server.server.id;
    agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'shop',
      serverId: server.server.id,
      services: [
        {
          name: 'db',
          command: 'sleep 600',
          volumes: ['data', 'logs'],
          stopSignal: 'SIGTERM',
          stopTimeoutSeconds: 5,
        },
      ],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    ids.env = env.body.id;
    await mkdir(join(volume('data'), 'base'), { recursive: true });
    await mkdir(volume('logs'), { recursive: true });
    await writeFile(join(volume('data'), 'base/table'), noise(6 * 1024 * 1024, 1));
    await writeFile(join(volume('data'), 'base/table-copy'), noise(6 * 1024 * 1024, 1));
    await writeFile(
      join(volume('logs'), 'app.log'),
      Array.from({ length: 200_000 }, (_, k) => `GET /items/${k} 200 ${(k * 7919) % 1000} ms\n`).join(''),
    );
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists format-2 snapshots that store what changed and restore from the bucket alone', async () => {
    const first = await backUp();
    assert.equal(first.snapshot.formatVersion, 2);
    assert.equal(first.snapshot.objects.data, null);
    assert.equal(first.snapshot.entries, 6);
    assert.match(note(first.operation), /3 files read .* 0 unchanged/);
    // The copy of the table is stored once.
    assert.ok(first.snapshot.sizeBytes < 11 * 1024 * 1024, `${first.snapshot.sizeBytes} bytes stored`);

    const second = await backUp();
    assert.notEqual(second.snapshot.id, first.snapshot.id);
    assert.match(note(second.operation), /0 files read \(0 bytes\), 3 unchanged; 0 bytes new in 0 packs/);
    assert.ok(second.snapshot.sizeBytes < 64 * 1024, `${second.snapshot.sizeBytes} bytes stored`);

    await appendFile(join(volume('logs'), 'app.log'), 'POST /cart 201 12 ms\n'.repeat(1000));
    const third = await backUp();
    assert.match(note(third.operation), /1 files read .* 2 unchanged/);

    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: ids.env,
      snapshotId: third.snapshot.id,
      work: join(dir, 'kit'),
    });
    for (const path of ['data/base/table', 'data/base/table-copy', 'logs/app.log']) {
      const [name, ...rest] = path.split('/');
      assert.deepEqual(
        await readFile(join(restored, path)),
        await readFile(join(volume(name!), ...rest)),
        path,
      );
    }
  });

  it('deletes the packs only a deleted snapshot used, and every kept snapshot still restores', async () => {
    await writeFile(join(volume('data'), 'once'), noise(20 * 1024 * 1024, 9));
    const withOnce = await backUp();
    await rm(join(volume('data'), 'once'));
    const after = await backUp();
    const own = await cp.db
      .selectFrom('packs')
      .select('object_key')
      .where('snapshot_id', '=', withOnce.snapshot.id)
      .execute();
    assert.ok(own.length >= 2, `${own.length} packs`);
    const before = await packObjects();

    const deleted = await cp.request<{ workflowId: string }>(
      'DELETE',
      `/snapshots/${withOnce.snapshot.id}`,
      token,
    );
    assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
    await cp.temporal.workflow.getHandle(deleted.body.workflowId).result();

    const left = await packObjects();
    assert.deepEqual(
      before.filter((key) => !left.includes(key)).sort(),
      own.map((p) => p.object_key).sort(),
      'exactly the packs of the deleted snapshot went',
    );
    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: ids.env,
      snapshotId: after.snapshot.id,
      work: join(dir, 'kit-after-gc'),
    });
    assert.deepEqual(
      await readFile(join(restored, 'data/base/table')),
      await readFile(join(volume('data'), 'base/table')),
    );
  });

  it('takes a point-in-time snapshot of a live PostgreSQL under load that restores consistent', async () => {
    const [pgPort, ledgerPort] = (await freePorts(2)) as [number, number];
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'bank',
      serverId: ids.server,
      services: [postgresService(pgPort), ledgerService(ledgerPort)],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const deploy = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
    assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
    await openBank(pgPort);

    const transfers = startTransfers(pgPort, ledgerPort);
    await new Promise((r) => setTimeout(r, 500));
    const started = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/backups`, token, {
      destinationId: ids.destination,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 180_000);
    const committed = await transfers.stop();
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + agent.output().slice(-3000));
    assert.ok(committed > 20, `transfers kept running during the backup (${committed})`);
    const { body } = await cp.request<{ snapshots: (Snapshot & { frozenMs: number })[] }>(
      'GET',
      `/environments/${env.body.id}/snapshots`,
      token,
    );
    const snapshot = body.snapshots[0]!;
    assert.equal(snapshot.formatVersion, 2);
    assert.ok(snapshot.frozenMs > 0, 'the time held still is recorded');

    // Restored from the bucket and the team key alone; PostgreSQL must start and the bank balance.
    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: env.body.id,
      snapshotId: snapshot.id,
      work: join(dir, 'kit-bank'),
    });
    await auditRestoredBank(restored, committed);
  });

  it('stores nothing again for the same file in another environment of the server, which restores on its own', async () => {
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'shop-staging',
      serverId: ids.server,
      services: [{ name: 'db', command: 'sleep 600', volumes: ['data'] }],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const staging = new ProcessRuntime(dataRoot).volumePath(env.body.id, 'data');
    await mkdir(join(staging, 'base'), { recursive: true });
    await copyFile(join(volume('data'), 'base/table'), join(staging, 'base/table'));
    await writeFile(join(staging, 'settings.json'), '{"env":"staging"}\n');
    const started = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/backups`, token, {
      destinationId: ids.destination,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    // Both files read (a first backup of the environment), the 6 MiB table found held: the shop's.
    assert.match(note(op), /2 files read .* 0 unchanged/);
    const { body } = await cp.request<{ snapshots: Snapshot[] }>(
      'GET',
      `/environments/${env.body.id}/snapshots`,
      token,
    );
    const snapshot = body.snapshots[0]!;
    assert.ok(snapshot.sizeBytes < 64 * 1024, `${snapshot.sizeBytes} bytes stored`);

    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: env.body.id,
      snapshotId: snapshot.id,
      work: join(dir, 'kit-staging'),
    });
    for (const path of ['base/table', 'settings.json'])
      assert.deepEqual(
        await readFile(join(restored, 'data', path)),
        await readFile(join(staging, path)),
        path,
      );
  });

  async function packObjects(): Promise<string[]> {
    const { Contents } = await stackS3().send(
      new ListObjectsV2Command({ Bucket: ids.bucket, Prefix: `strackt/${ids.team}/packs/` }),
    );
    return (Contents ?? []).map((o) => o.Key!);
  }
});

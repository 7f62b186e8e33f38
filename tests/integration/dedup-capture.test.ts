import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { appendFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { ControlPlaneClient } from '../../agent/control-plane-client.ts';
import { captureDedupSnapshot } from '../../agent/dedup-capture.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createLogger } from '../../common/log.ts';
import { createSnapshot } from '../../db/snapshots.data.ts';
import { getTeamPublicKey } from '../../db/team-keys.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { restoreWithKitV2 } from '../helpers/restore-kit-v2.ts';
import { stack, uniqueName } from '../helpers/stack.ts';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/**
 * A format-2 capture through the real API and object store, by the agent's own code: what it stores,
 * what a second capture sends again (nothing, then only what changed), and that the customer's restore
 * kit rebuilds every file from the bucket's objects and the team key alone.
 */
describe('format-2 capture', () => {
  let cp: ControlPlane;
  const dir = join(stack.runDir, uniqueName('dedup-capture'));
  const dataRoot = join(dir, 'agent');
  const log = createLogger('agent', { level: 'warn' });
  const ids = { team: '', server: '', env: '', destination: '', bucket: '' };
  let secretKey = '';
  let publicKey = '';
  let client: ControlPlaneClient;
  let runtime: ProcessRuntime;

  async function capture() {
    const snapshot = await createSnapshot(cp.db, {
      teamId: ids.team,
      environmentId: ids.env,
      destinationId: ids.destination,
      sourceServerId: ids.server,
      operationId: 'op_test',
      formatVersion: 2,
      keyId: 'key',
      objectKeys: (id) => ({
        data: `${id}/none`,
        manifest: `strackt/${ids.team}/${ids.env}/${id}/manifest.json.strackt`,
      }),
    });
    const spec = await client.environmentSpec(ids.env);
    const result = await captureDedupSnapshot(
      { runtime, controlPlane: client, serverId: ids.server, log },
      spec,
      { snapshotId: snapshot.id, environmentId: ids.env, teamPublicKey: publicKey },
      () => {},
    );
    return { snapshotId: snapshot.id, result };
  }

  before(async () => {
    cp = await startControlPlane();
    const created = await createTeam(cp.db, 'dedup');
    ids.team = created.team.id;
    const destination = await cp.addDestination(created.token);
    Object.assign(ids, { destination: destination.destinationId, bucket: destination.bucket });
    secretKey = destination.teamKey!;
    publicKey = (await getTeamPublicKey(cp.db, ids.team))!.publicKey.toString('hex');
    const server = await createServer(cp.db, ids.team, 'web-1');
    ids.server = server.server.id;
    client = new ControlPlaneClient(cp.apiUrl, server.agentToken);
    const env = await cp.request<{ id: string }>('POST', '/environments', created.token, {
      name: 'shop',
      serverId: ids.server,
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
    runtime = new ProcessRuntime(dataRoot);
    const data = runtime.volumePath(ids.env, 'data');
    const logs = runtime.volumePath(ids.env, 'logs');
    await mkdir(join(data, 'base'), { recursive: true });
    await mkdir(logs, { recursive: true });
    await writeFile(join(data, 'base/table'), noise(9 * 1024 * 1024, 1));
    await writeFile(join(data, 'base/copy-of-table'), noise(9 * 1024 * 1024, 1));
    await writeFile(join(data, 'PG_VERSION'), '17\n');
    await writeFile(
      join(logs, 'app.log'),
      Array.from({ length: 300_000 }, (_, k) => `GET /items/${k} 200 ${(k * 7919) % 1000} ms\n`).join(''),
    );
  });

  after(async () => {
    await cp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores each chunk once, sends nothing again for unchanged files, and restores with the kit', async () => {
    const first = await capture();
    assert.equal(first.result.entries, 7, JSON.stringify(first.result.volumes));
    // The copy of the table is stored once: 9 MiB, the log (some 8 MB) and PG_VERSION.
    assert.ok(first.result.figures.bytesStored < 18 * 1024 * 1024, JSON.stringify(first.result.figures));
    assert.equal(first.result.figures.filesRead, 4);

    const second = await capture();
    assert.equal(second.result.figures.filesRead, 0);
    assert.equal(second.result.figures.filesUnchanged, 4);
    assert.equal(second.result.figures.chunksStored, 0);

    await appendFile(join(runtime.volumePath(ids.env, 'logs'), 'app.log'), 'POST /cart 201\n'.repeat(1000));
    const third = await capture();
    assert.equal(third.result.figures.filesRead, 1);
    assert.ok(third.result.figures.bytesStored < 2 * 1024 * 1024, JSON.stringify(third.result.figures));

    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: ids.env,
      snapshotId: third.snapshotId,
      work: join(dir, 'kit'),
    });
    for (const path of ['data/base/table', 'data/base/copy-of-table', 'data/PG_VERSION', 'logs/app.log'])
      assert.deepEqual(
        await readFile(join(restored, path)),
        await readFile(
          join(runtime.volumePath(ids.env, path.split('/')[0]!), path.split('/').slice(1).join('/')),
        ),
        path,
      );
  });

  it("hashes a changed database file's unchanged chunks in place, its note kept on disk", async () => {
    const large = join(runtime.volumePath(ids.env, 'data'), 'base/large');
    const bytes = 24 * 1024 * 1024;
    await writeFile(large, noise(bytes, 5));
    const first = await capture();
    assert.equal(first.result.figures.bytesInPlace, 0);

    // Pages written in the middle, as a database writes them: the agent's note of the capture before
    // (read back from its file) gives the chunks the file had, and only the one written is cut.
    const fd = await open(large, 'r+');
    await fd.write(noise(16 * 1024, 6), 0, 16 * 1024, 11 * 1024 * 1024 + 4096);
    await fd.close();
    const second = await capture();
    assert.equal(second.result.figures.filesRead, 1);
    assert.ok(
      second.result.figures.bytesInPlace >= bytes - 3 * 1024 * 1024,
      JSON.stringify(second.result.figures),
    );
    assert.ok(second.result.figures.bytesStored < 3 * 1024 * 1024, JSON.stringify(second.result.figures));

    const restored = await restoreWithKitV2({
      bucket: ids.bucket,
      teamPrefix: `strackt/${ids.team}`,
      secretKey,
      environmentId: ids.env,
      snapshotId: second.snapshotId,
      work: join(dir, 'kit-in-place'),
    });
    assert.deepEqual(await readFile(join(restored, 'data/base/large')), await readFile(large));
  });
});

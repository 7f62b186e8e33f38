import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, it } from 'node:test';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startObjectStore } from '../helpers/object-store.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { stack, uniqueName } from '../helpers/stack.ts';

let storage: ChildProcess | undefined;
let cp: ControlPlane | undefined;
let agent: ProgramRun | undefined;
let dataRoot = '';

afterEach(async () => {
  await agent?.kill();
  if (dataRoot) await cp?.stopServices(dataRoot);
  await cp?.stop();
  storage?.kill('SIGKILL');
  [storage, cp, agent, dataRoot] = [undefined, undefined, undefined, ''];
});

// Each format: version 1 meets the bucket first creating its upload, version 2 in one read made to
// check its credentials before any URL is presigned with them.
for (const snapshotFormat of [1, 2] as const)
  it(`fails a backup at once with a clear error when the destination’s credentials are revoked, and the next run tries again (format ${snapshotFormat})`, async () => {
    // An object store of this test's own, with users (its IAM): the bucket belongs to a user whose keys
    // the destination holds, and which an administrator then deletes.
    const store = await startObjectStore({ iam: true });
    storage = store.child;
    const { endpoint, credentials: root } = store;
    const user = {
      accessKeyId: `u${randomBytes(6).toString('hex')}`,
      secretAccessKey: randomBytes(16).toString('hex'),
    };
    const admin = (...args: string[]) =>
      execFileSync(process.env.STRACKT_TEST_VERSITYGW_BIN!, ['admin', '--endpoint-url', endpoint, ...args], {
        env: { ADMIN_ACCESS_KEY_ID: root.accessKeyId, ADMIN_SECRET_ACCESS_KEY: root.secretAccessKey },
        stdio: 'pipe',
      });
    const grant = () =>
      admin('create-user', '--access', user.accessKeyId, '--secret', user.secretAccessKey, '--role', 'user');
    grant();
    admin('create-bucket', '--owner', user.accessKeyId, '--bucket', 'revocable');

    cp = await startControlPlane({ snapshotFormat });
    const team = await createTeam(cp.db, 'revoked');
    const { server, agentToken } = await createServer(cp.db, team.team.id, 'a');
    dataRoot = join(stack.runDir, uniqueName('agent'));
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    await cp.connected(team.token, server.id);
    const dest = await cp.request<{ destination: { id: string } }>('POST', '/destinations', team.token, {
      name: 'revocable',
      endpoint,
      bucket: 'revocable',
      pathStyle: true,
      ...user,
    });
    assert.equal(dest.status, 201, JSON.stringify(dest.body));
    const destinationId = dest.body.destination.id;
    const { envId, media } = await cp.deployMediaEnvironment(team.token, server.id, dataRoot);
    await cp.backUp(team.token, envId, destinationId);

    admin('delete-user', '--access', user.accessKeyId);
    const started = Date.now();
    const failed = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, team.token, {
      destinationId,
    });
    const op = await cp.finished(team.token, failed.body.id);
    assert.equal(op.status, 'failed');
    assert.match(
      op.error!,
      new RegExp(
        `StorageCredentialsRefused: the bucket of destination ${destinationId} refused its credentials \\(\\w+\\)`,
      ),
    );
    assert.ok(Date.now() - started < 30_000, 'not retried as if the bucket were down');
    assert.ok(!op.error!.includes(user.secretAccessKey));
    const pid = Number(await readFile(join(media, 'pid'), 'utf8'));
    assert.notEqual((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]![0], 'T', 'services run');

    // Nothing sticks: once the keys are valid again, the next backup goes through.
    grant();
    const snapshot = await cp.backUp(team.token, envId, destinationId);
    assert.ok(snapshot.sizeBytes > 0);
    const { body } = await cp.request<{ snapshots: unknown[] }>(
      'GET',
      `/environments/${envId}/snapshots`,
      team.token,
    );
    assert.equal(body.snapshots.length, 2, 'the failed run listed nothing');
  });

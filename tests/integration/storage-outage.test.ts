import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
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

after(async () => {
  await agent?.kill();
  if (dataRoot) await cp?.stopServices(dataRoot);
  await cp?.stop();
  storage?.kill('SIGKILL');
});

it('fails a backup cleanly when the object store goes down mid-upload and stays down', async () => {
  // A bucket server of this test's own, to stop for real.
  const store = await startObjectStore();
  storage = store.child;
  const { endpoint, credentials } = store;
  await store.s3.send(new CreateBucketCommand({ Bucket: 'outage' }));

  cp = await startControlPlane();
  const team = await createTeam(cp.db, 'outages');
  const { server, agentToken } = await createServer(cp.db, team.team.id, 'a');
  dataRoot = join(stack.runDir, uniqueName('agent'));
  agent = startAgent(cp.apiUrl, agentToken, dataRoot);
  await cp.connected(team.token, server.id);
  const dest = await cp.request<{ destination: { id: string } }>('POST', '/destinations', team.token, {
    name: 'flaky',
    endpoint,
    bucket: 'outage',
    pathStyle: true,
    ...credentials,
  });
  assert.equal(dest.status, 201, JSON.stringify(dest.body));
  const { envId, media } = await cp.deployMediaEnvironment(team.token, server.id, dataRoot);
  const operationId = await cp.backupUnderWay(team.token, envId, dest.body.destination.id);
  storage.kill('SIGKILL');

  // The agent retries with backoff; with the store still down the operation ends, failed, with the reason.
  const op = await cp.finished(team.token, operationId, 240_000);
  assert.equal(op.status, 'failed');
  assert.match(
    op.error ?? '',
    /uploading part \d+ failed|could not reach|ECONNREFUSED|fetch failed/i,
    op.error ?? '',
  );
  const pid = Number(await readFile(join(media, 'pid'), 'utf8'));
  assert.notEqual(
    (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]![0],
    'T',
    'the service runs again',
  );
  const { body } = await cp.request<{ snapshots: unknown[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    team.token,
  );
  assert.deepEqual(body.snapshots, [], 'nothing half-written is listed');
});

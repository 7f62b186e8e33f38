import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3-client.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { freePorts, stack, uniqueName, waitFor } from '../helpers/stack.ts';

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
  const [s3Port] = (await freePorts(1)) as [number];
  const dir = join(stack.runDir, uniqueName('s3'));
  await mkdir(join(dir, 'b'), { recursive: true });
  await mkdir(join(dir, 'meta'), { recursive: true });
  const credentials = {
    accessKeyId: `k${randomBytes(6).toString('hex')}`,
    secretAccessKey: randomBytes(16).toString('hex'),
  };
  storage = spawn(
    process.env.STRACKT_TEST_VERSITYGW_BIN!,
    ['--port', `127.0.0.1:${s3Port}`, '--quiet', 'posix', '--sidecar', join(dir, 'meta'), join(dir, 'b')],
    {
      stdio: 'ignore',
      env: {
        ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
        ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
    },
  );
  const endpoint = `http://127.0.0.1:${s3Port}`;
  const s3 = createS3Client({ ...credentials, endpoint, region: 'us-east-1', forcePathStyle: true });
  await waitFor('the object store', () =>
    s3.send(new CreateBucketCommand({ Bucket: 'outage' })).then(() => true),
  );

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

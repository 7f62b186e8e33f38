import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3-client.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { connectTestClient, freePorts, repoRoot, stack, uniqueName, waitFor } from '../helpers/stack.ts';

const temporalBin = process.env.STRACKT_TEST_TEMPORAL_BIN!;
let temporal: ChildProcess | undefined;
let cp: ControlPlane | undefined;
let agent: ProgramRun | undefined;
let dataRoot = '';

/** A Temporal server of this test's own, on a persistent SQLite file, so it can be killed and started again. */
function startTemporal(port: number, dbFile: string): ChildProcess {
  const attributes = readFileSync(join(repoRoot, 'deploy/search-attributes.txt'), 'utf8')
    .split('\n')
    .filter(Boolean);
  return spawn(
    temporalBin,
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--headless',
      '--namespace',
      'strackt',
      '--db-filename',
      dbFile,
      '--log-level',
      'error',
      ...attributes.flatMap((a) => ['--search-attribute', a]),
    ],
    { stdio: 'ignore' },
  );
}

async function temporalReady(address: string): Promise<void> {
  await waitFor(
    'Temporal to serve namespace strackt',
    async () => {
      const client = await connectTestClient(address);
      try {
        await client.workflowService.describeNamespace({ namespace: 'strackt' });
        return true;
      } finally {
        await client.connection.close();
      }
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

after(async () => {
  await agent?.kill();
  if (dataRoot) await cp?.stopServices(dataRoot);
  await cp?.stop();
  temporal?.kill('SIGKILL');
});

it('completes a backup while the Temporal server is killed and restarted mid-upload', async () => {
  assert.ok(temporalBin, 'STRACKT_TEST_TEMPORAL_BIN is set by deploy/test.sh');
  const [port] = (await freePorts(1)) as [number];
  const address = `127.0.0.1:${port}`;
  const dbFile = join(stack.runDir, `${uniqueName('temporal')}.db`);
  temporal = startTemporal(port, dbFile);
  await temporalReady(address);

  cp = await startControlPlane({ temporalAddress: address });
  const team = await createTeam(cp.db, 'restarts');
  const { server, agentToken } = await createServer(cp.db, team.team.id, 'a');
  dataRoot = join(stack.runDir, uniqueName('agent'));
  agent = startAgent(cp.apiUrl, agentToken, dataRoot);
  await cp.connected(team.token, server.id);

  const bucket = `restart-${randomBytes(4).toString('hex')}`;
  await createS3Client({ ...stack.s3, region: 'us-east-1', forcePathStyle: true }).send(
    new CreateBucketCommand({ Bucket: bucket }),
  );
  const dest = await cp.request<{ destination: { id: string } }>('POST', '/destinations', team.token, {
    name: 'bucket',
    endpoint: stack.s3.endpoint,
    bucket,
    pathStyle: true,
    accessKeyId: stack.s3.accessKeyId,
    secretAccessKey: stack.s3.secretAccessKey,
  });
  assert.equal(dest.status, 201, JSON.stringify(dest.body));
  const { envId } = await cp.deployMediaEnvironment(team.token, server.id, dataRoot);
  const operationId = await cp.backupUnderWay(team.token, envId, dest.body.destination.id);
  temporal.kill('SIGKILL');
  await new Promise((r) => temporal!.once('exit', r));
  await new Promise((r) => setTimeout(r, 2000));
  temporal = startTemporal(port, dbFile);
  await temporalReady(address);

  const op = await cp.finished(team.token, operationId, 180_000);
  assert.equal(op.status, 'succeeded', JSON.stringify(op));
  const { body } = await cp.request<{ snapshots: unknown[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    team.token,
  );
  assert.equal(body.snapshots.length, 1);
});

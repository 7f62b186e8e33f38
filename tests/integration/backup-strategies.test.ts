import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { BackupStrategy, ServiceSpec } from '../../common/environment-spec.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { openManifestV2 } from '../../format/v2/manifest-v2.ts';
import { parsePrintableSecretKey } from '../../format/team-key.ts';
import { stackS3, startControlPlane, type ControlPlane, type Operation } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { httpService } from '../helpers/services.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';

/** A process's state letter: T is stopped (paused by SIGSTOP). */
const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];

describe('backup strategies and hooks', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let agentToken: string;
  let token: string;
  let serverId: string;
  let destinationId: string;
  let bucket: string;
  let secretKey: Buffer;
  const dataRoot = join(stack.runDir, uniqueName('agent'));

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'strategists');
    token = team.token;
    const server = await createServer(cp.db, team.team.id, 'a');
    serverId = server.server.id;
    agentToken = server.agentToken;
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    await cp.connected(token, serverId);
    const dest = await cp.addDestination(token);
    destinationId = dest.destinationId;
    bucket = dest.bucket;
    secretKey = parsePrintableSecretKey(dest.teamKey!);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
  });

  /** A web service whose hooks leave a trace in its volume: `pre` before the capture, `post` after. */
  async function environment(strategy: BackupStrategy, extra: Partial<ServiceSpec> = {}) {
    const port = await freePort();
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: uniqueName('hooked'),
      serverId,
      backupStrategy: strategy,
      services: [
        {
          ...httpService(port),
          backupHooks: {
            pre: 'echo "$STRACKT_SERVICE" > "$STRACKT_VOLUME_WEBDATA/pre-hook.txt"',
            post: 'echo done > "$STRACKT_VOLUME_WEBDATA/post-hook.txt"',
          },
          ...extra,
        },
      ],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const deploy = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
    assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
    const volume = join(dataRoot, 'volumes', env.body.id, 'webdata');
    return {
      envId: env.body.id,
      port,
      volume,
      pid: () => readFile(join(volume, 'pid'), 'utf8').then(Number),
    };
  }

  async function manifestPaths(objectKey: string): Promise<string[]> {
    const body = await stackS3().send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }));
    const manifest = await openManifestV2(Buffer.from(await body.Body!.transformToByteArray()), {
      secretKey,
    });
    return manifest.entries.map((e) => e.path);
  }

  it('stop: services are stopped for the capture and started again; pre hooks are in the snapshot, post hooks after it', async () => {
    const env = await environment('stop');
    const pidBefore = await env.pid();
    const snapshot = await cp.backUp(token, env.envId, destinationId);
    const paths = await manifestPaths(snapshot.objects.manifest);
    assert.ok(paths.includes('webdata/pre-hook.txt'), 'the pre hook ran before the capture');
    assert.ok(!paths.includes('webdata/post-hook.txt'), 'the post hook ran after it');
    assert.equal(await readFile(join(env.volume, 'post-hook.txt'), 'utf8'), 'done\n');
    assert.equal(
      await readFile(join(env.volume, 'pre-hook.txt'), 'utf8'),
      'web\n',
      'hooks run as the service',
    );
    const pidAfter = await waitFor('the service to be started again', async () => {
      const pid = await env.pid();
      return pid !== pidBefore && existsSync(`/proc/${pid}`) ? pid : undefined;
    });
    assert.ok(!existsSync(`/proc/${pidBefore}`), 'the old process was stopped');
    assert.ok((await fetch(`http://127.0.0.1:${env.port}/`)).ok, `service ${pidAfter} answers`);
  });

  it('freeze: a capture that fails still resumes the services and runs the post hooks', async () => {
    const env = await environment('freeze');
    const pid = await env.pid();
    execFileSync('mkfifo', [join(env.volume, 'a-pipe')]);
    const started = await cp.request<{ id: string }>('POST', `/environments/${env.envId}/backups`, token, {
      destinationId,
    });
    const op = await cp.finished(token, started.body.id);
    assert.equal(op.status, 'failed');
    assert.match(op.error!, /CannotArchive: .*a-pipe/);
    assert.equal(await readFile(join(env.volume, 'post-hook.txt'), 'utf8'), 'done\n');
    assert.equal(await env.pid(), pid, 'not restarted');
    assert.notEqual(state(pid), 'T', 'not left paused');
    await rm(join(env.volume, 'a-pipe'));
  });

  it('a failing pre hook fails the backup with its output, and nothing is held', async () => {
    const env = await environment('freeze', {
      backupHooks: {
        pre: 'echo "dump refused" >&2; exit 3',
        post: 'echo done > "$STRACKT_VOLUME_WEBDATA/post-hook.txt"',
        timeoutSeconds: 30,
      },
    });
    const pid = await env.pid();
    const started = await cp.request<{ id: string }>('POST', `/environments/${env.envId}/backups`, token, {
      destinationId,
    });
    const op = await cp.finished(token, started.body.id);
    assert.equal(op.status, 'failed');
    assert.match(op.error!, /HookFailed: backup hook of service web exited with code 3: dump refused/);
    assert.ok(existsSync(join(env.volume, 'post-hook.txt')), 'post hooks run all the same');
    assert.notEqual(state(pid), 'T');
  });

  it('stop: an agent killed mid-capture has its services started again by the restarted agent', async () => {
    const env = await environment('stop');
    const media = env.volume;
    for (let i = 0; i < 6; i++)
      await writeFile(join(media, `clip-${i}.bin`), Buffer.alloc(64 * 1024 * 1024, i));
    const started = await cp.request<Operation>('POST', `/environments/${env.envId}/backups`, token, {
      destinationId,
    });
    const pidBefore = await env.pid();
    await waitFor(
      'the services to be stopped for the capture',
      async () => !existsSync(`/proc/${pidBefore}`),
      {
        intervalMs: 10,
      },
    );
    await agent.kill('SIGKILL');
    assert.ok(
      !(await fetch(`http://127.0.0.1:${env.port}/`).catch(() => undefined)),
      'down while the agent is',
    );
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    // Well before Temporal retries the capture (30 s heartbeat timeout): the restart itself starts them.
    await waitFor(
      'the restarted agent to start the services again',
      async () => (await fetch(`http://127.0.0.1:${env.port}/`).catch(() => undefined))?.ok,
      { timeoutMs: 15_000 },
    );
    assert.match(agent.output(), /settled a backup interrupted by an agent restart/);
    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
  });
});

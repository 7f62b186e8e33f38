import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import type { ServiceSpec } from '../../common/environment-spec.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { restoreSteps } from '../../workflows/restore.workflow.ts';
import {
  stackS3,
  startControlPlane,
  type AgentServer,
  type ApiError,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import { startAgent } from '../helpers/processes.ts';
import { httpService, postgresService } from '../helpers/services.ts';
import { freePort, freePorts, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { auditBank, openBank, startTransfers } from '../helpers/transfers.ts';

/** Every file, symlink and directory under a folder, with contents hashed; the service's pid file aside. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(at: string) {
    for (const name of (await readdir(at)).sort()) {
      const path = join(at, name);
      const rel = relative(dir, path);
      if (rel === 'pid') continue;
      const s = await stat(path).catch(() => undefined);
      const l = await readlink(path).catch(() => undefined);
      if (l !== undefined) out[rel] = `-> ${l}`;
      else if (s?.isDirectory()) {
        out[rel] = `dir ${(s.mode & 0o7777).toString(8)}`;
        await walk(path);
      } else
        out[rel] = createHash('sha256')
          .update(await readFile(path))
          .digest('hex');
    }
  }
  await walk(dir);
  return out;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

// Both formats, each through its own control plane: format 1's data object and its checkpoints, format
// 2's packs and journal of chunks written, through the same staging, swap and rollback
// (restore-v2.test.ts has format 2's own cases).
for (const format of [1, 2] as const)
  describe(`restore onto any connected server of the team, format ${format}`, () => {
    let cp: ControlPlane;
    let token: string;
    let teamId: string;
    let destinationId: string;
    let bucket: string;
    let a: AgentServer;
    let b: AgentServer;
    const s3 = stackS3();

    const addServer = (name: string, root?: string, env?: Record<string, string>) =>
      cp.addServer(token, teamId, name, { root, env });

    /** An HTTP service keeping files in its volume; it starts slowly while its volume holds a file `slow`. */
    async function filesEnvironment(
      server: AgentServer,
    ): Promise<{ envId: string; port: number; volume: string }> {
      const port = await freePort();
      const web = httpService(port);
      const service: ServiceSpec = {
        ...web,
        command: `[ ! -f "$STRACKT_VOLUME_WEBDATA/slow" ] || sleep 8; ${web.command}`,
      };
      const env = await cp.request<{ id: string }>('POST', '/environments', token, {
        name: uniqueName('files'),
        serverId: server.id,
        services: [service],
      });
      const deploy = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
      assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
      const volume = join(server.root, 'volumes', env.body.id, 'webdata');
      await writeFile(join(volume, 'a.txt'), 'one');
      await mkdir(join(volume, 'dir'));
      await writeFile(join(volume, 'dir', 'b.bin'), randomBytes(4 * 1024 * 1024));
      await symlink('a.txt', join(volume, 'link'));
      return { envId: env.body.id, port, volume };
    }

    const restore = (envId: string, body: unknown) =>
      cp.request<Operation & ApiError>('POST', `/environments/${envId}/restores`, token, body);

    const pidOf = async (volume: string) => Number(await readFile(join(volume, 'pid'), 'utf8'));

    async function answers(port: number): Promise<boolean> {
      return (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok ?? false;
    }

    before(async () => {
      cp = await startControlPlane({ snapshotFormat: format });
      const team = await createTeam(cp.db, `restorers-${format}`);
      token = team.token;
      teamId = team.team.id;
      a = await addServer('a');
      b = await addServer('b');
      ({ destinationId, bucket } = await cp.addDestination(token));
    });

    after(async () => {
      for (const server of [a, b]) {
        await server?.agent.kill();
        if (server) await cp?.stopServices(server.root);
      }
      await cp?.stop();
    });

    it('moves a PostgreSQL + HTTP environment from server A onto server B at the snapshot’s state', async () => {
      const [pgPort, webPort] = (await freePorts(2)) as [number, number];
      const env = await cp.request<{ id: string }>('POST', '/environments', token, {
        name: 'bank',
        serverId: a.id,
        services: [postgresService(pgPort), httpService(webPort)],
      });
      const envId = env.body.id;
      const deploy = await cp.request<{ id: string }>('POST', `/environments/${envId}/deploy`, token);
      assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
      await openBank(pgPort);
      let transfers = startTransfers(pgPort);
      await new Promise((r) => setTimeout(r, 300));
      await transfers.stop();
      const atSnapshot = await auditBank(pgPort);
      const snapshot = await cp.backUp(token, envId, destinationId);
      transfers = startTransfers(pgPort);
      await new Promise((r) => setTimeout(r, 300));
      await transfers.stop();
      assert.notEqual((await auditBank(pgPort)).transfers, atSnapshot.transfers, 'the data moved on');

      const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: b.id });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const events = cp.app.request(`/operations/${started.body.id}/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const again = await restore(envId, { snapshotId: snapshot.id, targetServerId: b.id });
      assert.equal(again.status, 409);
      assert.ok(again.body.error.message.includes(started.body.id), again.body.error.message);
      const progress = await cp.temporal.workflow
        .getHandle(started.body.workflowId)
        .query<{ steps: { name: string }[] }>('progress');
      assert.deepEqual(
        progress.steps.map((s) => s.name),
        restoreSteps,
      );

      const op = await cp.finished(token, started.body.id, 180_000);
      assert.equal(op.status, 'succeeded', JSON.stringify(op) + b.agent.output().slice(-3000));
      assert.ok(op.steps.every((s) => s.status === 'succeeded'));
      // Format 1: its data object. Format 2: every blob of the snapshot's packs, all its own (its first).
      const blobs = await cp.db
        .selectFrom('snapshot_chunks')
        .innerJoin('pack_chunks', 'pack_chunks.chunk_id', 'snapshot_chunks.chunk_id')
        .select((eb) => eb.fn.sum<string>('pack_chunks.length').as('bytes'))
        .where('snapshot_chunks.snapshot_id', '=', snapshot.id)
        .executeTakeFirstOrThrow();
      assert.equal(
        op.steps.find((s) => s.name === 'fetch, verify and unpack')!.bytes,
        format === 1 ? snapshot.sizeBytes : Number(blobs.bytes),
      );
      const detail = await cp.request<Operation & { restore: Record<string, unknown> }>(
        'GET',
        `/operations/${started.body.id}`,
        token,
      );
      assert.equal(detail.body.restore.targetServerId, b.id);
      assert.equal(detail.body.restore.previousServerId, a.id);
      assert.ok((detail.body.restore.downtimeMs as number) > 0, JSON.stringify(detail.body.restore));

      const moved = await cp.request<{ serverId: string }>('GET', `/environments/${envId}`, token);
      assert.equal(moved.body.serverId, b.id, 'the environment now lives on B');
      assert.deepEqual(await auditBank(pgPort), atSnapshot, 'B serves the data as it was at the snapshot');
      assert.ok(await answers(webPort));
      const onB = await new ProcessRuntime(b.root).status(envId);
      assert.deepEqual(
        onB.map((s) => [s.service, s.running]),
        [
          ['db', true],
          ['web', true],
        ],
      );
      const onA = await new ProcessRuntime(a.root).status(envId);
      assert.ok(
        onA.every((s) => !s.running),
        'stopped on A, so it never runs twice',
      );
      assert.ok(
        existsSync(join(a.root, 'volumes', envId, 'pgdata', 'PG_VERSION')),
        "A's data stays in place",
      );

      const stream = await (await events).text();
      const updates = [...stream.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Operation);
      assert.ok(updates.length >= 3, stream);
      assert.ok(updates.some((u) => u.steps.some((s) => s.status === 'running')));
      assert.equal(updates.at(-1)!.status, 'succeeded', 'the stream ends with the operation');
    });

    it('restores in place after the data changed: back to the snapshot’s state, previous data kept', async () => {
      const { envId, port, volume } = await filesEnvironment(a);
      const before = await tree(volume);
      const snapshot = await cp.backUp(token, envId, destinationId);
      await writeFile(join(volume, 'a.txt'), 'two');
      await rm(join(volume, 'dir', 'b.bin'));
      await writeFile(join(volume, 'c.txt'), 'new');

      const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: a.id });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const op = await cp.finished(token, started.body.id, 120_000);
      assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
      assert.deepEqual(await tree(volume), before);
      assert.ok(await answers(port));
      const kept = join(a.root, 'restores', envId, started.body.id, 'previous', 'webdata');
      assert.equal(await readFile(join(kept, 'c.txt'), 'utf8'), 'new', 'the replaced data is kept');
    });

    it('refuses another team’s server, a disconnected server and a snapshot of another environment, touching nothing', async () => {
      const { envId, volume } = await filesEnvironment(a);
      const other = await filesEnvironment(a);
      const snapshot = await cp.backUp(token, envId, destinationId);
      const pid = await pidOf(volume);

      const foreignTeam = await createTeam(cp.db, 'strangers');
      const foreign = await createServer(cp.db, foreignTeam.team.id, 'theirs');
      const toForeign = await restore(envId, { snapshotId: snapshot.id, targetServerId: foreign.server.id });
      assert.equal(toForeign.status, 404);
      assert.equal(toForeign.body.error.code, 'server_not_found');

      const offline = await createServer(cp.db, teamId, uniqueName('offline'));
      const toOffline = await restore(envId, { snapshotId: snapshot.id, targetServerId: offline.server.id });
      assert.equal(toOffline.status, 409);
      assert.equal(toOffline.body.error.code, 'server_disconnected');
      assert.ok(toOffline.body.error.message.includes(offline.server.id));

      const crossed = await restore(other.envId, { snapshotId: snapshot.id, targetServerId: a.id });
      assert.equal(crossed.status, 422);
      assert.equal(crossed.body.error.code, 'snapshot_of_another_environment');
      assert.equal(crossed.body.error.field, 'snapshotId');

      assert.equal(await pidOf(volume), pid);
      assert.ok(alive(pid), 'the services were never stopped');
      for (const id of [envId, other.envId]) {
        const ops = await cp.request<{ operations: Operation[] }>(
          'GET',
          `/environments/${id}/operations`,
          token,
        );
        assert.ok(!ops.body.operations.some((o) => (o as { kind?: string }).kind === 'restore'));
      }
    });

    it('fails at verification on a flipped byte in the stored data, before any service stops', async () => {
      const { envId, port, volume } = await filesEnvironment(a);
      const snapshot = await cp.backUp(token, envId, destinationId);
      // Format 1's data object, 60% in; format 2's pack, in the blob of the snapshot's largest chunk
      // (of random bytes: no later test's backup shares it, as it would a small file's).
      const [blob] = await cp.db
        .selectFrom('snapshot_chunks')
        .innerJoin('pack_chunks', 'pack_chunks.chunk_id', 'snapshot_chunks.chunk_id')
        .innerJoin('packs', 'packs.id', 'pack_chunks.pack_id')
        .select(['packs.object_key', 'pack_chunks.offset'])
        .where('snapshot_chunks.snapshot_id', '=', snapshot.id)
        .orderBy('pack_chunks.raw_length', 'desc')
        .limit(1)
        .execute();
      const key = format === 1 ? snapshot.objects.data : blob!.object_key;
      const stored = Buffer.from(
        await (
          await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        ).Body!.transformToByteArray(),
      );
      stored[format === 1 ? Math.floor(stored.length * 0.6) : blob!.offset + 40]! ^= 0x01;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: stored }));
      const before = await tree(volume);
      const pid = await pidOf(volume);

      const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: a.id });
      const op = await cp.finished(token, started.body.id, 120_000);
      assert.equal(op.status, 'failed');
      const fetchStep = op.steps.find((s) => s.name === 'fetch, verify and unpack')!;
      assert.equal(fetchStep.status, 'failed');
      assert.match(fetchStep.error!, /SnapshotCorrupt: .*(chunk|blob)/);
      assert.equal(op.steps.find((s) => s.name === 'stop services')!.status, 'skipped');
      assert.equal(await pidOf(volume), pid);
      assert.ok(alive(pid) && (await answers(port)), 'the services were never stopped');
      assert.deepEqual(await tree(volume), before, 'nothing on disk changed');
      assert.ok(!existsSync(join(a.root, 'restores', envId, started.body.id)), 'no staging left behind');
    });

    it('rolls back when the target’s disk fills up during the unpack: services up on the old data', async () => {
      const root = join(stack.runDir, uniqueName('small-disk'));
      await mkdir(root);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=700m', 'tmpfs', root]);
      const filler = join(root, 'filler');
      let small: AgentServer | undefined;
      try {
        small = await addServer('small', root);
        const { envId, port, volume } = await filesEnvironment(small);
        for (let i = 0; i < 3; i++)
          await writeFile(join(volume, `big-${i}.bin`), randomBytes(50 * 1024 * 1024));
        const snapshot = await cp.backUp(token, envId, destinationId);
        await writeFile(join(volume, 'a.txt'), 'old data');
        const before = await tree(volume);
        const pid = await pidOf(volume);

        const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: small.id });
        assert.equal(started.status, 202, JSON.stringify(started.body));
        // Another process takes the rest of the disk the moment the restore starts writing to it.
        const work = join(root, 'restores', envId, started.body.id);
        await waitFor('the restore to start writing', async () => existsSync(join(work, 'staging')), {
          intervalMs: 2,
          timeoutMs: 60_000,
        });
        // The restore keeps writing meanwhile: take halves of what is free until 16 MiB are left, less
        // than the restore keeps free for the services (64 MiB) and more than it would need to stop.
        for (let n = 0; ; n++) {
          const fs = await statfs(root);
          const free = fs.bavail * fs.bsize;
          if (free < 16 * 1024 * 1024) break;
          try {
            execFileSync('fallocate', ['-l', String(Math.floor(free / 2 / 4096) * 4096), `${filler}-${n}`], {
              stdio: 'ignore',
            });
          } catch {
            // the restore took that space first: measure again
          }
        }

        const op = await cp.finished(token, started.body.id, 120_000);
        assert.equal(op.status, 'failed');
        assert.match(op.error!, /DiskFull/, JSON.stringify(op));
        assert.match(op.error!, /stopped before it filled/, 'stopped while the services still had room');
        assert.equal(op.steps.find((s) => s.name === 'stop services')!.status, 'skipped');
        assert.equal(await pidOf(volume), pid);
        assert.ok(alive(pid) && (await answers(port)), 'services up');
        assert.deepEqual(await tree(volume), before, 'on the old data');
        assert.ok(!existsSync(work), 'the partial staging is removed');
      } finally {
        await small?.agent.kill();
        if (small) await cp.stopServices(small.root);
        execFileSync('umount', [root]);
      }
    });

    it('resumes when the agent is killed mid-download and started again, not rewriting what it had verified', async () => {
      // Downloads capped at 48 MiB/s: the 384 MiB snapshot takes 8 s to fetch, time to see entries
      // checkpointed and kill the agent mid-download (uncapped, it can be over between two checkpoints).
      const capped = await addServer('capped', undefined, { STRACKT_DOWNLOAD_MIB_PER_SECOND: '48' });
      try {
        const { envId, media } = await cp.deployMediaEnvironment(token, capped.id, capped.root);
        const snapshot = await cp.backUp(token, envId, destinationId);
        const before = await tree(media);
        await writeFile(join(media, 'clip-0.bin'), 'changed after the snapshot');

        const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: capped.id });
        const work = join(capped.root, 'restores', envId, started.body.id);
        await waitFor(
          'some files to be unpacked and verified',
          async () => Number((await readFile(join(work, 'checkpoint'), 'utf8').catch(() => '')) || 0) > 2,
          { intervalMs: 5, timeoutMs: 60_000 },
        );
        await capped.agent.kill('SIGKILL');
        const done = Number(await readFile(join(work, 'checkpoint'), 'utf8'));
        capped.agent = startAgent(cp.apiUrl, capped.agentToken, capped.root);
        const op = await cp.finished(token, started.body.id, 180_000);
        assert.equal(op.status, 'succeeded', JSON.stringify(op) + capped.agent.output().slice(-3000));
        const resumed = /"entriesDone":(\d+).*"msg":"resuming an interrupted restore"/.exec(
          capped.agent.output(),
        );
        assert.ok(resumed, `the restarted agent resumed: ${capped.agent.output().slice(-2000)}`);
        assert.ok(Number(resumed[1]) >= done, `it resumed after the ${done} entries checkpointed`);
        assert.deepEqual(await tree(media), before);
      } finally {
        await capped.agent.kill();
        await cp.stopServices(capped.root);
      }
    });

    it('puts the old data and services back when cancelled mid-restore', async () => {
      const { envId, port, volume } = await filesEnvironment(a);
      // In the snapshot, the service starts slowly: the restore is still in its health check when cancelled.
      await writeFile(join(volume, 'slow'), '');
      const snapshot = await cp.backUp(token, envId, destinationId);
      await rm(join(volume, 'slow'));
      await writeFile(join(volume, 'a.txt'), 'current');
      const before = await tree(volume);

      const started = await restore(envId, { snapshotId: snapshot.id, targetServerId: a.id });
      await waitFor('the health check', async () => {
        const { body } = await cp.request<Operation>('GET', `/operations/${started.body.id}`, token);
        return body.steps.find((s) => s.name === 'health check')?.status === 'running';
      });
      const cancel = await cp.request<Operation>('POST', `/operations/${started.body.id}/cancel`, token);
      assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
      const op = await cp.finished(token, started.body.id, 120_000);
      assert.equal(op.status, 'cancelled', JSON.stringify(op));
      assert.deepEqual(await tree(volume), before, 'the old data is back');
      await waitFor('the old services to answer', () => answers(port));
      assert.ok(alive(await pidOf(volume)));
      const late = await cp.request<ApiError>('POST', `/operations/${started.body.id}/cancel`, token);
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'operation_finished');
    });
  });

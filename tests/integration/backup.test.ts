import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { unpackArchive } from '../../format/archive-reader.ts';
import { openManifest } from '../../format/manifest-object.ts';
import { parsePrintableSecretKey } from '../../format/team-key.ts';
import { stackS3, startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { restoreAndAuditBank } from '../helpers/bank-proof.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { ledgerService, postgresService } from '../helpers/services.ts';
import { freePorts, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { openBank, startTransfers } from '../helpers/transfers.ts';

describe('backup to the team’s own bucket', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let dataRoot: string;
  let agentToken: string;
  let secretKey: Buffer;
  let destinationId: string;
  let bucket: string;
  const s3 = stackS3();

  before(async () => {
    // Version 1's data object and upload; backup-format2.test.ts and dedup-capture.test.ts take format 2's
    // point-in-time snapshot and its faults.
    cp = await startControlPlane({ snapshotFormat: 1 });
    const team = await createTeam(cp.db, 'backers');
    token = team.token;
    const created0 = await createServer(cp.db, team.team.id, 'a');
    const server = created0.server;
    agentToken = created0.agentToken;
    dataRoot = join(stack.runDir, uniqueName('agent'));
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    const dest = await cp.addDestination(token);
    ({ destinationId, bucket } = dest);
    secretKey = parsePrintableSecretKey(dest.teamKey!);
    await cp.connected(token, server.id);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
  });

  it('takes a point-in-time snapshot of a live PostgreSQL under load that restores consistent', async () => {
    // bench/consistency-off.sh sets `none` to show this proof failing without a consistency strategy.
    const strategy = process.env.STRACKT_PROOF_STRATEGY ?? 'freeze';
    const [pgPort, ledgerPort] = (await freePorts(2)) as [number, number];
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'bank',
      backupStrategy: strategy,
      serverId: (await cp.request<{ servers: { id: string }[] }>('GET', '/servers', token)).body.servers[0]!
        .id,
      services: [postgresService(pgPort), ledgerService(ledgerPort)],
    });
    const deploy = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
    assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
    await openBank(pgPort);

    const transfers = startTransfers(pgPort, ledgerPort);
    await new Promise((r) => setTimeout(r, 500));
    const started = await cp.request<{ id: string; workflowId: string }>(
      'POST',
      `/environments/${env.body.id}/backups`,
      token,
      { destinationId },
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const again = await cp.request<{ error: { code: string; message: string } }>(
      'POST',
      `/environments/${env.body.id}/backups`,
      token,
      {
        destinationId,
      },
    );
    assert.equal(again.status, 409);
    assert.ok(again.body.error.message.includes(started.body.id));
    const op = await cp.finished(token, started.body.id);
    const committed = await transfers.stop();
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + agent.output().slice(-3000));
    assert.ok(committed > 20, `transfers kept running during the backup (${committed})`);
    const upload = op.steps.find((s) => s.name === 'capture and upload') as { bytes?: number } | undefined;
    assert.ok(upload?.bytes && upload.bytes > 0, 'the upload step reports its bytes');

    const { body } = await cp.request<{
      snapshots: {
        id: string;
        frozenMs: number;
        sizeBytes: number;
        objects: { data: string; manifest: string };
      }[];
    }>('GET', `/environments/${env.body.id}/snapshots`, token);
    assert.equal(body.snapshots.length, 1);
    const snap = body.snapshots[0]!;
    assert.ok(snap.sizeBytes > 0, JSON.stringify(snap));
    assert.ok(strategy === 'none' || snap.frozenMs > 0, 'the frozen window is recorded');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload is left behind');

    // Restore it with the format library alone into a fresh folder; PostgreSQL must start and the bank balance.
    await restoreAndAuditBank(s3, bucket, secretKey, snap.objects, committed);
  });

  it('captures again when its agent is killed mid-capture and started again, with services running again', async () => {
    const serverId = (await cp.request<{ servers: { id: string }[] }>('GET', '/servers', token)).body
      .servers[0]!.id;
    const { envId, media } = await cp.deployMediaEnvironment(token, serverId, dataRoot);
    const operationId = await cp.backupUnderWay(token, envId, destinationId);
    const spools = join(dataRoot, 'captures', 'spool', envId);
    await waitFor(
      'the capture to be under way',
      async () => {
        const [snapshotDir] = await readdir(spools).catch(() => []);
        return snapshotDir && existsSync(join(spools, snapshotDir, 'part-00001'));
      },
      { intervalMs: 20 },
    );
    await agent.kill('SIGKILL');
    const [snapshotDir] = await readdir(spools);
    assert.ok(
      !existsSync(join(spools, snapshotDir!, 'captured.json')),
      'killed before the capture was whole',
    );
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    const op = await cp.finished(token, operationId, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    const pid = Number(await readFile(join(media, 'pid'), 'utf8'));
    assert.notEqual(
      (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]![0],
      'T',
      'the service is not left paused',
    );
    const { body } = await cp.request<{ snapshots: { entries: number }[] }>(
      'GET',
      `/environments/${envId}/snapshots`,
      token,
    );
    assert.equal(body.snapshots.length, 1);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload is left behind');
  });
  it('resumes an upload whose agent is killed after the capture: parts in the bucket are not sent again', async () => {
    const serverId = (await cp.request<{ servers: { id: string }[] }>('GET', '/servers', token)).body
      .servers[0]!.id;
    // A bandwidth cap (an agent setting) keeps the upload behind the capture long enough to kill it in between.
    await agent.kill();
    agent = startAgent(cp.apiUrl, agentToken, dataRoot, { STRACKT_UPLOAD_MIB_PER_SECOND: '24' });
    await cp.connected(token, serverId);
    const { envId } = await cp.deployMediaEnvironment(token, serverId, dataRoot);
    const operationId = await cp.backupUnderWay(token, envId, destinationId);
    const spools = join(dataRoot, 'captures', 'spool', envId);
    const sentBeforeKill = await waitFor(
      'the capture to be whole and two parts uploaded',
      async () => {
        const [snapshotDir] = await readdir(spools);
        if (!snapshotDir || !existsSync(join(spools, snapshotDir, 'captured.json'))) return undefined;
        const sent = (await readFile(join(spools, snapshotDir, 'uploaded.jsonl'), 'utf8').catch(() => ''))
          .split('\n')
          .filter(Boolean).length;
        return sent >= 2 ? sent : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await agent.kill('SIGKILL');
    agent = startAgent(cp.apiUrl, agentToken, dataRoot);
    const op = await cp.finished(token, operationId, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    const note = op.steps.find((s) => s.name === 'capture and upload')?.note ?? '';
    const resumed = /resumed: (\d+) of \d+ parts were already stored$/.exec(note);
    assert.ok(resumed, `the step says the upload resumed: ${JSON.stringify(op.steps)}`);
    assert.ok(
      Number(resumed[1]) >= sentBeforeKill,
      `${resumed[1]} parts kept, ${sentBeforeKill} sent before the kill`,
    );
    assert.deepEqual(await readdir(spools), [], 'the spool is gone once the upload is complete');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload is left behind');
  });
  it('leaves only snapshots that restore and verify: every one listed, fault runs included', async () => {
    const envs = await cp.request<{ environments: { id: string }[] }>('GET', '/environments', token);
    let checked = 0;
    for (const env of envs.body.environments) {
      const { body } = await cp.request<{
        snapshots: { id: string; objects: { data: string; manifest: string } }[];
      }>('GET', `/environments/${env.id}/snapshots`, token);
      for (const snap of body.snapshots) {
        const get = async (key: string) =>
          (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as Readable;
        const manifest = await openManifest(
          Buffer.concat(await (await get(snap.objects.manifest)).toArray()),
          {
            secretKey,
          },
        );
        const staging = join(stack.runDir, uniqueName('verify'));
        await unpackArchive({ source: await get(snap.objects.data), key: { secretKey }, manifest, staging });
        await rm(staging, { recursive: true, force: true });
        checked++;
      }
    }
    assert.ok(checked >= 2, `checked ${checked} snapshots`);
  });
});

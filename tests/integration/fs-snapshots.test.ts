import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { SnapshotMethod } from '../../common/host-tasks.ts';
import { createTeam } from '../../db/teams.data.ts';
import { auditRestoredBank } from '../helpers/bank-proof.ts';
import { stackS3, startControlPlane, type AgentServer, type ControlPlane } from '../helpers/control-plane.ts';
import { loopDevicesLeft, makeLoopFs, type LoopFs, type LoopFsKind } from '../helpers/loop-fs.ts';
import { startAgent } from '../helpers/processes.ts';
import { restoreWithKitV2 } from '../helpers/restore-kit-v2.ts';
import { ledgerService, postgresService } from '../helpers/services.ts';
import { freePorts, stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { openBank, startTransfers } from '../helpers/transfers.ts';

const run = promisify(execFile);

interface SnapshotBody {
  id: string;
  frozenMs: number;
  volumeMethods: Record<string, SnapshotMethod> | null;
  objects: { data: string; manifest: string };
}

/** The Btrfs subvolumes under `mountPoint`, by path: the volumes, and any snapshot left behind. */
async function subvolumes(mountPoint: string): Promise<string[]> {
  const { stdout } = await run('btrfs', ['subvolume', 'list', mountPoint]);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' path ')[1]!)
    .sort();
}

describe('file-system snapshots: the services held only while they are taken', () => {
  let cp: ControlPlane;
  let token: string;
  let teamId: string;
  let destinationId: string;
  let bucket: string;
  let teamKey: string;
  const s3 = stackS3();

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'snapshotters');
    token = team.token;
    teamId = team.team.id;
    const dest = await cp.addDestination(token);
    ({ destinationId, bucket } = dest);
    teamKey = dest.teamKey!;
  });

  after(async () => {
    await cp?.stop();
  });

  /** A server whose agent's data root is on a fresh `kind` file system; everything undone after `body`. */
  async function onFileSystem(kind: LoopFsKind, body: (fs: LoopFs, server: AgentServer) => Promise<void>) {
    const fs = await makeLoopFs(kind);
    const server = await cp.addServer(token, teamId, uniqueName(kind), {
      root: join(fs.mountPoint, 'agent'),
    });
    try {
      await body(fs, server);
    } finally {
      await server.agent.kill();
      await cp.stopServices(server.root);
      await fs.cleanup();
    }
  }

  // Btrfs volumes that are plain folders (made before the agent, or restored) are copied by reflink.
  const cases: [LoopFsKind, SnapshotMethod, 'plain folders'?][] = [
    ['btrfs', 'btrfs-subvolume'],
    ['btrfs', 'reflink', 'plain folders'],
    ['xfs', 'reflink'],
    ['ext4', 'read'],
  ];
  for (const [kind, method, plain] of cases) {
    it(`${kind}${plain ? `, ${plain}` : ''}: volumes taken by ${method}; the bank and its ledger restore as one point in time`, async () => {
      await onFileSystem(kind, async (fs, server) => {
        const [pgPort, ledgerPort] = (await freePorts(2)) as [number, number];
        const env = await cp.request<{ id: string }>('POST', '/environments', token, {
          name: uniqueName('bank'),
          serverId: server.id,
          services: [postgresService(pgPort), ledgerService(ledgerPort)],
        });
        const volumes = ['ledger', 'pgdata'].map((v) => join(server.root, 'volumes', env.body.id, v));
        if (plain) for (const volume of volumes) await mkdir(volume, { recursive: true });
        const deploy = await cp.request<{ id: string }>('POST', `/environments/${env.body.id}/deploy`, token);
        assert.equal((await cp.finished(token, deploy.body.id)).status, 'succeeded');
        const made = volumes.map((v) => relative(fs.mountPoint, v));
        if (kind === 'btrfs') assert.deepEqual(await subvolumes(fs.mountPoint), plain ? [] : made);
        await openBank(pgPort);

        const transfers = startTransfers(pgPort, ledgerPort);
        await new Promise((r) => setTimeout(r, 500));
        const started = await cp.request<{ id: string }>(
          'POST',
          `/environments/${env.body.id}/backups`,
          token,
          {
            destinationId,
          },
        );
        const op = await cp.finished(token, started.body.id);
        const committed = await transfers.stop();
        assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));

        const { body } = await cp.request<{ snapshots: SnapshotBody[] }>(
          'GET',
          `/environments/${env.body.id}/snapshots`,
          token,
        );
        const snap = body.snapshots[0]!;
        assert.deepEqual(snap.volumeMethods, { ledger: method, pgdata: method });
        const note = op.steps.find((s) => s.name === 'capture and upload')?.note ?? '';
        assert.match(note, new RegExp(`^held ${snap.frozenMs} ms; ledger ${method}, pgdata ${method}(;|$)`));
        console.log(`${kind}: ${method}, services held ${snap.frozenMs} ms`);
        if (method === 'read') assert.match(server.agent.output(), /ext4 at .* has no snapshots or reflinks/);
        assert.ok(
          !existsSync(join(server.root, 'volumes', '.snapshots', env.body.id)),
          'the snapshots are removed',
        );
        if (kind === 'btrfs')
          assert.deepEqual(await subvolumes(fs.mountPoint), plain ? [] : made, 'no snapshot subvolume left');

        const restored = await restoreWithKitV2({
          bucket,
          teamPrefix: `strackt/${teamId}`,
          secretKey: teamKey,
          environmentId: env.body.id,
          snapshotId: snap.id,
          work: join(stack.runDir, uniqueName('kit')),
        });
        await auditRestoredBank(restored, committed);
      });
    });
  }

  for (const kind of ['btrfs', 'xfs'] as const) {
    it(`${kind}: an agent killed while the capture reads its snapshot leaves nothing behind after its restart`, async () => {
      await onFileSystem(kind, async (fs, server) => {
        const { envId } = await cp.deployMediaEnvironment(token, server.id, server.root);
        const operationId = await cp.backupUnderWay(token, envId, destinationId);
        const snapshot = join(server.root, 'volumes', '.snapshots', envId, 'webdata');
        await waitFor('the snapshot to be taken', () => Promise.resolve(existsSync(snapshot)), {
          intervalMs: 10,
        });
        await server.agent.kill('SIGKILL');
        assert.ok(existsSync(snapshot), 'killed while the snapshot was there');

        server.agent = startAgent(cp.apiUrl, server.agentToken, server.root);
        const op = await cp.finished(token, operationId, 180_000);
        assert.equal(op.status, 'succeeded', JSON.stringify(op) + server.agent.output().slice(-3000));
        assert.deepEqual(
          await readdir(join(server.root, 'volumes', '.snapshots')),
          [],
          'no snapshot is left',
        );
        assert.deepEqual(
          await readdir(join(server.root, 'captures')).then((f) => f.filter((n) => n.endsWith('.json'))),
          [],
        );
        if (kind === 'btrfs')
          assert.deepEqual(await subvolumes(fs.mountPoint), [`agent/volumes/${envId}/webdata`]);
        const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload is left behind');
      });
    });
  }

  it('leaves no loop device attached', async () => {
    assert.deepEqual(await loopDevicesLeft(), []);
  });
});

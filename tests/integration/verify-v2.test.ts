import assert from 'node:assert/strict';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createCipheriv } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import {
  stackS3,
  startControlPlane,
  type AgentServer,
  type ApiError,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createOperation } from '../../db/operations.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { grantVerificationAccess } from '../../db/verifications.data.ts';
import { httpService } from '../helpers/services.ts';
import { freePort, uniqueName } from '../helpers/stack.ts';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

interface Snapshot {
  id: string;
  lastVerified: { result: string; error: string | null } | null;
}

/**
 * Verification of format-2 snapshots through the API, the verify operation and a real agent process:
 * every blob of every pack read and checked; a flipped byte or a deleted pack fails it naming the
 * damage, the damaged copies are marked bad in the index, and the next backup uploads those chunks
 * anew so that its snapshot verifies and restores. Only the verifying server reads through its routes.
 */
describe('verification of format-2 snapshots', () => {
  let cp: ControlPlane;
  let token = '';
  let teamId = '';
  let bucket = '';
  let destinationId = '';
  let a: AgentServer;
  let envId = '';
  let volume = '';
  const s3 = stackS3();

  async function backUp(): Promise<string> {
    const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
      destinationId,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    return (await snapshots())[0]!.id;
  }

  async function snapshots(): Promise<Snapshot[]> {
    const { body } = await cp.request<{ snapshots: Snapshot[] }>(
      'GET',
      `/environments/${envId}/snapshots`,
      token,
    );
    return body.snapshots;
  }

  async function verify(snapshotId: string, body: Record<string, unknown> = {}) {
    const started = await cp.request<Operation & ApiError>(
      'POST',
      `/snapshots/${snapshotId}/verify`,
      token,
      body,
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 180_000);
    const snapshot = (await snapshots()).find((s) => s.id === snapshotId)!;
    return {
      op,
      verified: snapshot.lastVerified,
      step: op.steps.find((s) => s.name === 'stream and verify')!,
    };
  }

  /** The snapshot's copies as the index holds them, pack by pack. */
  const copiesOf = (snapshotId: string) =>
    cp.db
      .selectFrom('pack_chunks as c')
      .innerJoin('packs as p', 'p.id', 'c.pack_id')
      .innerJoin('snapshot_chunks as s', 's.chunk_id', 'c.chunk_id')
      .select([
        'p.id as packId',
        'p.object_key as objectKey',
        'c.chunk_id as chunkId',
        'c.offset',
        'c.bad_at',
      ])
      .where('s.snapshot_id', '=', snapshotId)
      .orderBy('p.id')
      .orderBy('c.offset')
      .execute();

  const badCopies = async () =>
    (
      await cp.db
        .selectFrom('pack_chunks')
        .select(['pack_id', 'chunk_id'])
        .where('bad_at', 'is not', null)
        .execute()
    )
      .map((r) => `${r.pack_id}/${r.chunk_id.toString('hex')}`)
      .sort();

  before(async () => {
    cp = await startControlPlane({ snapshotFormat: 2 });
    const team = await createTeam(cp.db, 'verifiers');
    token = team.token;
    teamId = team.team.id;
    a = await cp.addServer(token, teamId, 'a');
    ({ destinationId, bucket } = await cp.addDestination(token));
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: uniqueName('files'),
      serverId: a.id,
      services: [httpService(await freePort())],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    envId = env.body.id;
    // Never deployed: its files are written here and backed up; the restore at the end starts it.
    volume = new ProcessRuntime(a.root).volumePath(envId, 'webdata');
    await mkdir(join(volume, 'db'), { recursive: true });
    await writeFile(join(volume, 'db', 'table'), noise(6 * 1024 * 1024, 1));
    await writeFile(join(volume, 'db', 'other'), noise(3 * 1024 * 1024, 2));
    await writeFile(join(volume, 'a.txt'), 'one');
  });

  after(async () => {
    await a?.agent.kill();
    if (a) await cp?.stopServices(a.root);
    await cp?.stop();
  });

  it('verifies a format-2 snapshot whole, and a share of its packs when asked', async () => {
    const snapshotId = await backUp();
    const whole = await verify(snapshotId);
    assert.equal(whole.op.status, 'succeeded', JSON.stringify(whole.op) + a.agent.output().slice(-3000));
    assert.equal(whole.verified?.result, 'ok');
    assert.equal(whole.verified.error, null);
    assert.ok(whole.step.note?.includes('entries checked'), JSON.stringify(whole.step));

    const part = await verify(snapshotId, { subset: 10 });
    assert.equal(part.op.status, 'succeeded', JSON.stringify(part.op));
    assert.match(a.agent.output(), /"packs":1,"of":[1-9]/, 'one pack of them read');

    for (const subset of [0, 101, 2.5]) {
      const refused = await cp.request<ApiError>('POST', `/snapshots/${snapshotId}/verify`, token, {
        subset,
      });
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.equal(refused.body.error.field, 'subset');
    }
    assert.deepEqual(await badCopies(), []);
  });

  it('fails on a flipped byte naming it, marks that copy bad, and the next backup heals it', async () => {
    const snapshotId = (await snapshots())[0]!.id;
    const copies = await copiesOf(snapshotId);
    const hit = copies[0]!;
    const stored = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: hit.objectKey }))
      ).Body!.transformToByteArray(),
    );
    stored[hit.offset + 40]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: hit.objectKey, Body: stored }));

    const failed = await verify(snapshotId);
    assert.equal(failed.op.status, 'failed', JSON.stringify(failed.op));
    assert.equal(failed.verified?.result, 'failed');
    assert.match(
      failed.verified!.error!,
      new RegExp(
        `1 of \\d+ chunks .*pack ${hit.packId}: blob ${hit.chunkId.toString('hex').slice(0, 16)} failed authentication`,
      ),
    );
    assert.deepEqual(
      await badCopies(),
      [`${hit.packId}/${hit.chunkId.toString('hex')}`],
      'only the damaged copy',
    );

    // Every chunk of the damaged snapshot stays in the next one: a file is added, none changed.
    await writeFile(join(volume, 'b.txt'), 'two');
    const healed = await backUp();
    const fresh = (await copiesOf(healed)).filter((c) => c.chunkId.equals(hit.chunkId) && !c.bad_at);
    assert.equal(fresh.length, 1, 'the chunk is uploaded anew');
    assert.notEqual(fresh[0]!.packId, hit.packId);
    const again = await verify(healed);
    assert.equal(again.op.status, 'succeeded', JSON.stringify(again.op) + a.agent.output().slice(-3000));
    assert.equal(again.verified?.result, 'ok');
    // The damaged snapshot reads the new copy from now on: it verifies again too.
    assert.equal((await verify(snapshotId)).op.status, 'succeeded');

    await writeFile(join(volume, 'a.txt'), 'changed after the backup');
    const restore = await cp.request<Operation & ApiError>('POST', `/environments/${envId}/restores`, token, {
      snapshotId: healed,
      targetServerId: a.id,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    const restored = await cp.finished(token, restore.body.id, 180_000);
    assert.equal(restored.status, 'succeeded', JSON.stringify(restored) + a.agent.output().slice(-3000));
    assert.equal(await readFile(join(volume, 'a.txt'), 'utf8'), 'one');
    assert.equal(await readFile(join(volume, 'b.txt'), 'utf8'), 'two');
    assert.deepEqual(await readFile(join(volume, 'db', 'table')), noise(6 * 1024 * 1024, 1));
  });

  it('fails on a deleted pack naming it, and marks its copies bad', async () => {
    const snapshotId = (await snapshots())[0]!.id;
    const copies = (await copiesOf(snapshotId)).filter((c) => !c.bad_at);
    const gone = copies.at(-1)!;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: gone.objectKey }));
    const before = await badCopies();

    const failed = await verify(snapshotId);
    assert.equal(failed.op.status, 'failed', JSON.stringify(failed.op));
    assert.equal(failed.verified?.result, 'failed');
    assert.match(failed.verified!.error!, new RegExp(`pack ${gone.packId} is gone from the storage`));
    const inPack = copies
      .filter((c) => c.packId === gone.packId)
      .map((c) => `${c.packId}/${c.chunkId.toString('hex')}`);
    assert.deepEqual(await badCopies(), [...before, ...inPack].sort());

    const healed = await backUp();
    const again = await verify(healed);
    assert.equal(again.op.status, 'succeeded', JSON.stringify(again.op) + a.agent.output().slice(-3000));
    assert.equal((await verify(snapshotId)).op.status, 'succeeded');
  });

  it('answers the verification routes only to the server running that verification', async () => {
    const snapshotId = (await snapshots())[0]!.id;
    const op = await createOperation(cp.db, {
      teamId,
      environmentId: envId,
      serverId: a.id,
      kind: 'verify',
      workflowId: uniqueName('wf'),
    });
    await grantVerificationAccess(cp.db, {
      operationId: op.id,
      teamId,
      snapshotId,
      serverId: a.id,
      sealedDataKey: '00'.repeat(80),
    });
    const copies = await copiesOf(snapshotId);
    const chunkIds = [...new Set(copies.map((c) => c.chunkId.toString('hex')))];
    const packIds = [...new Set(copies.filter((c) => !c.bad_at).map((c) => c.packId))];
    const call = (agentToken: string, path: string, body: unknown) =>
      cp.request<ApiError>('POST', `/agent/verifications/${op.id}/${path}`, agentToken, body);
    const asks = [
      ['chunks/locate', { ids: chunkIds }],
      ['packs/access', { packIds }],
      ['damage', { copies: [{ chunkId: chunkIds[0], packId: packIds[0] }] }],
    ] as const;

    for (const [path, body] of asks) assert.equal((await call(a.agentToken, path, body)).status, 200, path);
    // The copy reported is whole: the control plane reads it and marks nothing.
    assert.deepEqual(
      (await call(a.agentToken, 'damage', { copies: [{ chunkId: chunkIds[0], packId: packIds[0] }] })).body,
      { marked: 0 },
    );
    const sameTeam = await createServer(cp.db, teamId, uniqueName('b'));
    const foreignTeam = await createTeam(cp.db, 'strangers');
    const foreign = await createServer(cp.db, foreignTeam.team.id, 'theirs');
    for (const intruder of [sameTeam.agentToken, foreign.agentToken])
      for (const [path, body] of asks) {
        const answer = await call(intruder, path, body);
        assert.equal(answer.status, 404, `${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error.code, 'verification_not_found');
      }
    await cp.db
      .updateTable('operations')
      .set({ status: 'failed', finished_at: new Date() })
      .where('id', '=', op.id)
      .execute();
    for (const [path, body] of asks) assert.equal((await call(a.agentToken, path, body)).status, 404, path);
  });
});

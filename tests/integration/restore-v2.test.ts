import assert from 'node:assert/strict';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import {
  stackS3,
  startControlPlane,
  type AgentServer,
  type ApiError,
  type ControlPlane,
  type Operation,
} from '../helpers/control-plane.ts';
import { ControlPlaneClient } from '../../agent/control-plane-client.ts';
import { captureDedupSnapshot } from '../../agent/dedup-capture.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createLogger } from '../../common/log.ts';
import { createOperation } from '../../db/operations.data.ts';
import { saveRestore } from '../../db/restores.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createSnapshot } from '../../db/snapshots.data.ts';
import { getTeamPublicKey } from '../../db/team-keys.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { httpService } from '../helpers/services.ts';
import { startReceiver, type RunningReceiver } from '../helpers/receiver.ts';
import { startAgent } from '../helpers/processes.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/** Every file, symlink and directory under a folder, contents hashed, modes kept; the service's pid file aside. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(at: string) {
    for (const name of (await readdir(at)).sort()) {
      const path = join(at, name);
      const rel = relative(dir, path);
      if (rel === 'pid') continue;
      const l = await readlink(path).catch(() => undefined);
      const s = await stat(path).catch(() => undefined);
      if (l !== undefined) out[rel] = `-> ${l}`;
      else if (s?.isDirectory()) {
        out[rel] = `dir ${(s.mode & 0o7777).toString(8)}`;
        await walk(path);
      } else
        out[rel] = `${(s!.mode & 0o7777).toString(8)} ${createHash('sha256')
          .update(await readFile(path))
          .digest('hex')}`;
    }
  }
  await walk(dir);
  return out;
}

/**
 * A format-2 snapshot, taken by the agent's own capture code through the real API and object store,
 * restored through the public API onto a server running a real agent: byte for byte, and refused
 * (SnapshotCorrupt, live data untouched) once a byte of a pack is flipped. The routes that hand out
 * chunk places and pack keys answer only the server running that restore.
 */
describe('restore of a format-2 snapshot', () => {
  let cp: ControlPlane;
  let token = '';
  let teamId = '';
  let destinationId = '';
  let bucket = '';
  let a: AgentServer;
  let envId = '';
  let volume = '';
  let snapshotId = '';
  let port = 0;
  let atSnapshot: Record<string, string> = {};
  let receiver: RunningReceiver | undefined;
  let onReceiverId = '';
  const receiverData = join(stack.runDir, uniqueName('receiver-data'));
  const s3 = stackS3();

  const restore = (snapshot = snapshotId) =>
    cp.request<Operation & ApiError>('POST', `/environments/${envId}/restores`, token, {
      snapshotId: snapshot,
      targetServerId: a.id,
    });

  /** The chunks and packs of the snapshot, as the index holds them. */
  const packsOfSnapshot = () =>
    cp.db
      .selectFrom('packs')
      .innerJoin('pack_chunks', 'pack_chunks.pack_id', 'packs.id')
      .innerJoin('snapshot_chunks', 'snapshot_chunks.chunk_id', 'pack_chunks.chunk_id')
      .select([
        'packs.id',
        'packs.object_key',
        'pack_chunks.chunk_id',
        'pack_chunks.offset',
        'pack_chunks.raw_length',
      ])
      .where('snapshot_chunks.snapshot_id', '=', snapshotId)
      .execute();

  /** A format-2 snapshot of the environment by the agent's capture code, marked complete as a backup would. */
  async function captureV2(destination: string): Promise<string> {
    const teamKey = (await getTeamPublicKey(cp.db, teamId))!;
    const snapshot = await createSnapshot(cp.db, {
      teamId,
      environmentId: envId,
      destinationId: destination,
      sourceServerId: a.id,
      operationId: 'op_capture',
      formatVersion: 2,
      keyId: teamKey.keyId.toString('hex'),
      objectKeys: (id) => ({
        data: `${id}/none`,
        manifest: `strackt/${teamId}/${envId}/${id}/manifest.json.strackt`,
      }),
    });
    const client = new ControlPlaneClient(cp.apiUrl, a.agentToken);
    const captured = await captureDedupSnapshot(
      {
        runtime: new ProcessRuntime(a.root),
        controlPlane: client,
        serverId: a.id,
        log: createLogger('agent', { level: 'warn' }),
      },
      await client.environmentSpec(envId),
      { snapshotId: snapshot.id, environmentId: envId, teamPublicKey: teamKey.publicKey.toString('hex') },
      () => {},
    );
    await cp.db
      .updateTable('snapshots')
      .set({
        status: 'complete',
        size_bytes: captured.bytes,
        entries: captured.entries,
        manifest_sha256: captured.manifestSha256,
        completed_at: new Date(),
      })
      .where('id', '=', snapshot.id)
      .execute();
    return snapshot.id;
  }

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'dedup-restorers');
    token = team.token;
    teamId = team.team.id;
    a = await cp.addServer(token, teamId, 'a');
    ({ destinationId, bucket } = await cp.addDestination(token));
    port = await freePort();
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: uniqueName('files'),
      serverId: a.id,
      services: [httpService(port)],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    envId = env.body.id;

    // Never deployed: its files are written here, captured, then changed before the restore.
    const runtime = new ProcessRuntime(a.root);
    volume = runtime.volumePath(envId, 'webdata');
    await mkdir(join(volume, 'db', 'base'), { recursive: true });
    await writeFile(join(volume, 'db', 'base', 'table'), noise(5 * 1024 * 1024 + 77, 3));
    await writeFile(join(volume, 'db', 'base', 'copy'), noise(5 * 1024 * 1024 + 77, 3));
    await writeFile(join(volume, 'a.txt'), 'one');
    await writeFile(join(volume, 'empty'), '');
    await writeFile(join(volume, 'secret.conf'), 'k=v\n', { mode: 0o600 });
    await symlink('a.txt', join(volume, 'link'));
    atSnapshot = await tree(volume);

    snapshotId = await captureV2(destinationId);
  });

  after(async () => {
    await a?.agent.kill();
    await receiver?.program.kill();
    if (a) await cp?.stopServices(a.root);
    await cp?.stop();
  });

  it('restores every file, link and mode as it was at the snapshot, over changed data', async () => {
    await writeFile(join(volume, 'a.txt'), 'two');
    await rm(join(volume, 'db', 'base', 'copy'));
    await writeFile(join(volume, 'new.txt'), 'new');

    const started = await restore();
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 120_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
    assert.deepEqual(await tree(volume), atSnapshot);
    const fetchStep = op.steps.find((s) => s.name === 'fetch, verify and unpack')!;
    // The copy's chunks are the table's: fetched once, so about the table's bytes, not twice them.
    assert.ok(
      fetchStep.bytes! > 5 * 1024 * 1024 && fetchStep.bytes! < 6 * 1024 * 1024,
      String(fetchStep.bytes),
    );
    assert.ok((await fetch(`http://127.0.0.1:${port}/`)).ok, 'the service runs on the restored data');
  });

  it('answers chunk places and pack keys only to the server running that restore, only of its snapshot', async () => {
    // A restore running on server a (of another environment, so it blocks nothing), as the workflow leaves it.
    const other = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: uniqueName('other'),
      serverId: a.id,
      services: [httpService(await freePort())],
    });
    const op = await createOperation(cp.db, {
      teamId,
      environmentId: other.body.id,
      serverId: a.id,
      kind: 'restore',
      workflowId: uniqueName('wf'),
    });
    await saveRestore(cp.db, {
      operationId: op.id,
      teamId,
      environmentId: other.body.id,
      snapshotId,
      targetServerId: a.id,
      previousServerId: null,
      sealedDataKey: '00'.repeat(80),
    });
    const rows = await packsOfSnapshot();
    const chunkIds = [...new Set(rows.map((r) => r.chunk_id.toString('hex')))];
    const packIds = [...new Set(rows.map((r) => r.id))];
    const stranger = randomBytes(32).toString('hex');
    const locate = (agentToken: string, ids: string[]) =>
      cp.request<{ locations: { chunkId: string; packId: string }[] } & ApiError>(
        'POST',
        `/agent/restores/${op.id}/chunks/locate`,
        agentToken,
        { ids },
      );
    const packAccess = (agentToken: string, ids: string[]) =>
      cp.request<{ packs: { packId: string; url: string; sealedDataKey: string }[] } & ApiError>(
        'POST',
        `/agent/restores/${op.id}/packs/access`,
        agentToken,
        { packIds: ids },
      );

    const damage = (agentToken: string) =>
      cp.request<{ marked: number } & ApiError>('POST', `/agent/restores/${op.id}/damage`, agentToken, {
        copies: [{ chunkId: rows[0]!.chunk_id.toString('hex'), packId: rows[0]!.id }],
      });

    const own = await locate(a.agentToken, [...chunkIds, stranger]);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.deepEqual(own.body.locations.map((l) => l.chunkId).sort(), [...chunkIds].sort());
    const access = await packAccess(a.agentToken, packIds);
    assert.equal(access.status, 200, JSON.stringify(access.body));
    assert.deepEqual(access.body.packs.map((p) => p.packId).sort(), [...packIds].sort());
    for (const p of access.body.packs) assert.match(p.sealedDataKey, /^[0-9a-f]{160}$/);

    const sameTeam = await createServer(cp.db, teamId, uniqueName('b'));
    const foreignTeam = await createTeam(cp.db, 'strangers');
    const foreign = await createServer(cp.db, foreignTeam.team.id, 'theirs');
    for (const intruder of [sameTeam.agentToken, foreign.agentToken]) {
      for (const answer of [
        await locate(intruder, chunkIds),
        await packAccess(intruder, packIds),
        await damage(intruder),
      ]) {
        assert.equal(answer.status, 404, JSON.stringify(answer.body));
        assert.equal(answer.body.error.code, 'restore_not_found');
        const text = JSON.stringify(answer.body);
        assert.ok(!packIds.some((id) => text.includes(id)) && !text.includes(chunkIds[0]!), text);
      }
    }
    // Its own server claiming a good copy damaged: the control plane reads it again and marks nothing.
    const lie = await damage(a.agentToken);
    assert.equal(lie.status, 200, JSON.stringify(lie.body));
    assert.equal(lie.body.marked, 0);
    const notOfIt = await packAccess(a.agentToken, [packIds[0]!, 'pack_0000000000000000']);
    assert.equal(notOfIt.status, 404);
    assert.equal(notOfIt.body.error.code, 'pack_not_found');
    const tooMany = await locate(
      a.agentToken,
      Array.from({ length: 10_001 }, () => stranger),
    );
    assert.equal(tooMany.status, 422);
    assert.equal(tooMany.body.error.field, 'ids');

    // Once the restore ends, nothing more is handed out for it, not even to its server.
    await cp.db
      .updateTable('operations')
      .set({ status: 'failed', finished_at: new Date() })
      .where('id', '=', op.id)
      .execute();
    assert.equal((await locate(a.agentToken, chunkIds)).status, 404);
    assert.equal((await packAccess(a.agentToken, packIds)).status, 404);
    assert.equal((await damage(a.agentToken)).status, 404);
  });

  it('resumes when the agent is killed mid-fetch, not fetching again the chunks it had written', async () => {
    // Downloads capped at 16 MiB/s: the 48 MiB of new packs take some 3 s, time to kill the agent mid-way.
    await a.agent.kill();
    a.agent = startAgent(cp.apiUrl, a.agentToken, a.root, { STRACKT_DOWNLOAD_MIB_PER_SECOND: '16' });
    await writeFile(join(volume, 'big.bin'), noise(48 * 1024 * 1024, 9));
    const atBig = await tree(volume);
    const snapshot = await captureV2(destinationId);
    await rm(join(volume, 'big.bin'));

    const started = await restore(snapshot);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const work = join(a.root, 'restores', envId, started.body.id);
    const journalled = async () =>
      (await readFile(join(work, 'written')).catch(() => Buffer.alloc(0))).length;
    await waitFor(
      'chunks written and checkpointed',
      async () =>
        // Eight chunks at least: 4 MiB or more, chunks being 512 KiB at the least.
        (await journalled()) >= 8 * 32 &&
        Number((await readFile(join(work, 'checkpoint'), 'utf8').catch(() => '')) || 0) > 0,
      { intervalMs: 5, timeoutMs: 60_000 },
    );
    await a.agent.kill('SIGKILL');
    const journal = await readFile(join(work, 'written'));
    const done = new Set<string>();
    for (let at = 0; at + 32 <= journal.length; at += 32)
      done.add(journal.subarray(at, at + 32).toString('hex'));
    a.agent = startAgent(cp.apiUrl, a.agentToken, a.root);
    const op = await cp.finished(token, started.body.id, 180_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
    assert.deepEqual(await tree(volume), atBig);

    const out = a.agent.output();
    assert.match(out, /"msg":"resuming an interrupted restore"/, out.slice(-2000));
    const resumed = /"chunksDone":(\d+),.*"msg":"resuming with the chunks already written"/.exec(out);
    assert.ok(resumed && Number(resumed[1]) >= done.size, `resumed after the ${done.size} chunks journalled`);
    // What the restarted agent fetched: about the snapshot's blobs less those written before the kill.
    const blobs = await cp.db
      .selectFrom('pack_chunks')
      .innerJoin('snapshot_chunks', 'snapshot_chunks.chunk_id', 'pack_chunks.chunk_id')
      .select(['pack_chunks.chunk_id', 'pack_chunks.length'])
      .where('snapshot_chunks.snapshot_id', '=', snapshot)
      .execute();
    const all = blobs.reduce((n, b) => n + b.length, 0);
    const skipped = blobs
      .filter((b) => done.has(b.chunk_id.toString('hex')))
      .reduce((n, b) => n + b.length, 0);
    assert.ok(skipped >= 2 * 1024 * 1024, `${skipped} bytes of chunks written before the kill`);
    const fetched = Number(/"bytes":(\d+),[^\n]*"msg":"unpacked into staging"/.exec(out)?.[1]);
    assert.ok(
      fetched < all - skipped / 2,
      `the restarted agent fetched ${fetched} of the snapshot's ${all} blob bytes, ${skipped} of them written before`,
    );
  });

  it('fails with SnapshotCorrupt on a flipped byte in a pack, the live data and services untouched, and the next backup heals it', async () => {
    // The blob of db/base/table's first chunk (5 MiB of noise that stays as it is): the largest.
    const [first] = (await packsOfSnapshot()).sort((x, y) => y.raw_length - x.raw_length);
    const stored = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: first!.object_key }))
      ).Body!.transformToByteArray(),
    );
    stored[first!.offset + 40]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: first!.object_key, Body: stored }));
    await writeFile(join(volume, 'a.txt'), 'changed after the restore');
    const before = await tree(volume);
    const pid = Number(await readFile(join(volume, 'pid'), 'utf8'));

    const started = await restore();
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 120_000);
    assert.equal(op.status, 'failed', JSON.stringify(op));
    const fetchStep = op.steps.find((s) => s.name === 'fetch, verify and unpack')!;
    assert.equal(fetchStep.status, 'failed');
    assert.match(fetchStep.error!, /SnapshotCorrupt: .*(blob|chunk)/);
    assert.equal(op.steps.find((s) => s.name === 'stop services')!.status, 'skipped');
    assert.equal(Number(await readFile(join(volume, 'pid'), 'utf8')), pid);
    assert.ok(existsSync(`/proc/${pid}`) && (await fetch(`http://127.0.0.1:${port}/`)).ok, 'services up');
    assert.deepEqual(await tree(volume), before, 'nothing on disk changed');
    assert.ok(!existsSync(join(a.root, 'restores', envId, started.body.id)), 'no staging left behind');

    // The restore told the control plane, which read the copy again and marked it, and it alone, bad.
    const bad = await cp.db
      .selectFrom('pack_chunks')
      .select(['pack_id', 'chunk_id'])
      .where('bad_at', 'is not', null)
      .execute();
    assert.deepEqual(
      bad.map((c) => [c.pack_id, c.chunk_id.toString('hex')]),
      [[first!.id, first!.chunk_id.toString('hex')]],
    );
    // The next backup does not rely on it: the chunk is uploaded anew and that snapshot restores.
    const healed = await captureV2(destinationId);
    const copies = await cp.db
      .selectFrom('pack_chunks')
      .select(['pack_id', 'bad_at'])
      .where('chunk_id', '=', first!.chunk_id)
      .execute();
    assert.ok(
      copies.some((c) => c.pack_id !== first!.id && c.bad_at === null),
      `a good copy beside the bad one: ${JSON.stringify(copies)}`,
    );
    const again = await restore(healed);
    assert.equal(again.status, 202, JSON.stringify(again.body));
    const restored = await cp.finished(token, again.body.id, 120_000);
    assert.equal(restored.status, 'succeeded', JSON.stringify(restored));
    assert.equal(
      (await readFile(join(volume, 'db', 'base', 'table'))).compare(noise(5 * 1024 * 1024 + 77, 3)),
      0,
    );
  });

  it('restores from a receiver, reading its packs by range over the pinned certificate', async () => {
    receiver = await startReceiver(receiverData);
    const added = await cp.request<{ destination: { id: string } } & ApiError>(
      'POST',
      '/destinations',
      token,
      {
        kind: 'receiver',
        name: 'home',
        url: receiver.url,
        fingerprint: receiver.fingerprint,
        enrolmentCode: receiver.enrolmentCode,
      },
    );
    assert.equal(added.status, 201, JSON.stringify(added.body));
    onReceiverId = added.body.destination.id;
    await writeFile(join(volume, 'a.txt'), 'on the receiver');
    const onReceiver = await tree(volume);
    const snapshot = await captureV2(added.body.destination.id);
    await writeFile(join(volume, 'a.txt'), 'changed again');

    const started = await restore(snapshot);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 120_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
    assert.deepEqual(await tree(volume), onReceiver);
  });

  it('repacks a mostly dead pack on a receiver, and the snapshot left restores from the new pack', async () => {
    assert.ok(onReceiverId, 'the receiver test ran first');
    await writeFile(join(volume, 'big'), noise(9 * 1024 * 1024, 41));
    await writeFile(join(volume, 'small'), noise(1024 * 1024, 42));
    const first = await captureV2(onReceiverId);
    const [pack, ...more] = await cp.db
      .selectFrom('packs')
      .select(['id', 'object_key'])
      .where('snapshot_id', '=', first)
      .execute();
    assert.ok(pack && more.length === 0, 'the new files in one pack');
    await rm(join(volume, 'big'));
    const kept = await captureV2(onReceiverId);
    const atKept = await tree(volume);

    const deleted = await cp.request<{ workflowId: string }>('DELETE', `/snapshots/${first}`, token);
    assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
    await cp.temporal.workflow.getHandle(deleted.body.workflowId).result();
    const rows = await cp.db
      .selectFrom('packs')
      .select(['id', 'snapshot_id', 'status'])
      .where('destination_id', '=', onReceiverId)
      .execute();
    assert.ok(!rows.some((r) => r.id === pack.id), 'the mostly dead pack is gone');
    assert.ok(
      rows.some((r) => r.snapshot_id === null && r.status === 'stored'),
      'a repacked pack is stored on the receiver',
    );

    await writeFile(join(volume, 'small'), 'changed before the restore');
    const started = await restore(kept);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const op = await cp.finished(token, started.body.id, 120_000);
    assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
    assert.deepEqual(await tree(volume), atKept);
  });
  it('finishes a collection on a receiver cut after its objects went at the next prune, the snapshot left restoring throughout', async () => {
    assert.ok(onReceiverId, 'the receiver tests ran first');
    const onDisk = (key: string) => existsSync(join(receiverData, 'objects', ...key.split('/')));
    const packsOf = (snapshot: string) =>
      cp.db
        .selectFrom('packs')
        .select(['id', 'object_key', 'status'])
        .where('snapshot_id', '=', snapshot)
        .execute();
    await writeFile(join(volume, 'gone'), noise(3 * 1024 * 1024, 43));
    const dropped = await captureV2(onReceiverId);
    const going = await packsOf(dropped);
    assert.ok(going.length > 0 && going.every((p) => onDisk(p.object_key)), 'its packs are on the receiver');
    await rm(join(volume, 'gone'));
    const left = await captureV2(onReceiverId);
    const atLeft = await tree(volume);

    // The fault, in PostgreSQL itself: the packs' rows cannot be deleted, so the collection stops
    // after marking them deleting and removing their objects from the receiver, as a worker killed
    // before its last step would.
    await sql`CREATE FUNCTION receiver_gc_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected: the collection dies before deleting the rows'; END $$`.execute(cp.db);
    await sql`CREATE TRIGGER receiver_gc_refuse BEFORE DELETE ON packs
      FOR EACH ROW EXECUTE FUNCTION receiver_gc_refuse()`.execute(cp.db);
    const deleted = await cp.request<{ workflowId: string }>('DELETE', `/snapshots/${dropped}`, token);
    assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
    await waitFor('the collection to mark the packs deleting and remove them from the receiver', async () => {
      const now = await packsOf(dropped);
      return (
        now.length === going.length && now.every((p) => p.status === 'deleting' && !onDisk(p.object_key))
      );
    });
    const restoreLeft = async () => {
      await writeFile(join(volume, 'small'), 'changed before the restore');
      const started = await restore(left);
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const op = await cp.finished(token, started.body.id, 120_000);
      assert.equal(op.status, 'succeeded', JSON.stringify(op) + a.agent.output().slice(-3000));
      assert.deepEqual(await tree(volume), atLeft);
    };
    await restoreLeft();

    // The prune dies with its collection unfinished; the next one, once the fault is gone, ends it.
    await cp.temporal.workflow
      .getHandle(deleted.body.workflowId)
      .terminate("the test: the prune dies between its collection's steps");
    await sql`DROP TRIGGER receiver_gc_refuse ON packs`.execute(cp.db);
    await sql`DROP FUNCTION receiver_gc_refuse()`.execute(cp.db);
    const next = await captureV2(onReceiverId);
    const again = await cp.request<{ workflowId: string }>('DELETE', `/snapshots/${next}`, token);
    assert.equal(again.status, 202, JSON.stringify(again.body));
    await cp.temporal.workflow.getHandle(again.body.workflowId).result();
    assert.deepEqual(await packsOf(dropped), [], "the dropped snapshot's pack rows are gone");
    await restoreLeft();
  });
});

import assert from 'node:assert/strict';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { stackS3, startControlPlane, type ControlPlane, type Operation } from '../helpers/control-plane.ts';
import { ControlPlaneClient } from '../../agent/control-plane-client.ts';
import { putFile } from '../../agent/http-upload.ts';
import { ProcessRuntime } from '../../agent/process-runtime.ts';
import { createEnvironment } from '../../db/environments.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createSnapshot, markFailed } from '../../db/snapshots.data.ts';
import { getTeamPublicKey, openTeamSecretKey, teamDedupKey } from '../../db/team-keys.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { chunkIdOf } from '../../format/v2/chunk-id.ts';
import { readPack } from '../../format/v2/pack-reader.ts';
import { PackWriter } from '../../format/v2/pack-writer.ts';
import type { BlobCopy } from '../../storage/opened-blobs.ts';
import { repackBlobs } from '../../storage/pack-repack.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { restoreWithKitV2 } from '../helpers/restore-kit-v2.ts';
import { freePorts, stack, uniqueName } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait-for.ts';

const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/**
 * Garbage collection of format 2's packs (issue 18) on the whole stack, with a real agent and faults
 * injected for real: a prune beside a backup that relies on the pruned snapshot's chunks, a
 * collection cut between its steps, and an upload its backup abandoned.
 */
describe('format-2 garbage collection beside backups and faults', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  const dir = join(stack.runDir, uniqueName('gc-format2'));
  const dataRoot = join(dir, 'agent');
  const ids = { team: '', env: '', destination: '', bucket: '', server: '', agentToken: '' };
  let token = '';
  let secretKey = '';
  const data = (name: string) => join(new ProcessRuntime(dataRoot).volumePath(ids.env, 'data'), name);

  async function startBackup(): Promise<string> {
    const started = await cp.request<{ id: string }>('POST', `/environments/${ids.env}/backups`, token, {
      destinationId: ids.destination,
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    return started.body.id;
  }

  async function backUp(): Promise<string> {
    const operation = await cp.finished(token, await startBackup(), 180_000);
    assert.equal(operation.status, 'succeeded', JSON.stringify(operation));
    return (await listed())[0]!;
  }

  async function listed(): Promise<string[]> {
    const { body } = await cp.request<{ snapshots: { id: string }[] }>(
      'GET',
      `/environments/${ids.env}/snapshots`,
      token,
    );
    return body.snapshots.map((s) => s.id);
  }

  async function deleteSnapshot(snapshotId: string) {
    const deleted = await cp.request<{ workflowId: string }>('DELETE', `/snapshots/${snapshotId}`, token);
    assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
    return cp.temporal.workflow.getHandle(deleted.body.workflowId);
  }

  /** The attempt a prune's collection is at (0: none pending). */
  async function collectionAttempt(prune: Awaited<ReturnType<typeof deleteSnapshot>>): Promise<number> {
    const { raw } = await prune.describe();
    return raw.pendingActivities?.find((a) => a.activityType?.name === 'collectGarbage')?.attempt ?? 0;
  }

  async function packObjects(): Promise<string[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await stackS3().send(
        new ListObjectsV2Command({
          Bucket: ids.bucket,
          Prefix: `strackt/${ids.team}/packs/`,
          ContinuationToken,
        }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    return keys;
  }

  const packsOf = (snapshotId: string) =>
    cp.db
      .selectFrom('packs')
      .select(['id', 'object_key', 'status'])
      .where('snapshot_id', '=', snapshotId)
      .execute();

  /** Every listed snapshot restored from the bucket alone, byte for byte against `expected`. */
  async function restoreAllListed(expected: Record<string, Record<string, Buffer>>) {
    for (const snapshotId of await listed()) {
      const restored = await restoreWithKitV2({
        bucket: ids.bucket,
        teamPrefix: `strackt/${ids.team}`,
        secretKey,
        environmentId: ids.env,
        snapshotId,
        work: join(dir, uniqueName('kit')),
      });
      const files = expected[snapshotId];
      assert.ok(files, `${snapshotId} is one of the snapshots this test made`);
      for (const [name, bytes] of Object.entries(files))
        assert.ok((await readFile(join(restored, 'data', name))).equals(bytes), `${snapshotId}: ${name}`);
    }
  }

  const x = noise(6 * 1024 * 1024, 1);
  const big = noise(64 * 1024 * 1024, 2);
  const contents: Record<string, Record<string, Buffer>> = {};

  before(async () => {
    cp = await startControlPlane({ snapshotFormat: 2 });
    const created = await createTeam(cp.db, 'gc2');
    ids.team = created.team.id;
    token = created.token;
    const destination = await cp.addDestination(token);
    Object.assign(ids, { destination: destination.destinationId, bucket: destination.bucket });
    secretKey = destination.teamKey!;
    const server = await createServer(cp.db, ids.team, 'web-1');
    // 64 MiB at 8 MiB/s: a backup of the big file stays in flight for seconds, long enough to prune beside it.
    Object.assign(ids, { server: server.server.id, agentToken: server.agentToken });
    agent = startAgent(cp.apiUrl, server.agentToken, dataRoot, { STRACKT_UPLOAD_MIB_PER_SECOND: '8' });
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'shop',
      serverId: server.server.id,
      services: [
        { name: 'db', command: 'sleep 600', volumes: ['data'], stopSignal: 'SIGTERM', stopTimeoutSeconds: 5 },
      ],
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    ids.env = env.body.id;
    await mkdir(data(''), { recursive: true });
    await writeFile(data('x'), x);
    await cp.connected(token, server.server.id);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the chunks a backup in flight claimed while the snapshot that stored them is pruned', async () => {
    const a = await backUp();
    contents[a] = { x };
    const ofA = await cp.db
      .selectFrom('snapshot_chunks')
      .select('chunk_id')
      .where('snapshot_id', '=', a)
      .execute();
    const packsOfA = await packsOf(a);
    assert.ok(ofA.length > 0 && packsOfA.length > 0);

    // B: x unchanged (claimed from A's packs, read first: "x" sorts before "zz-big"), then 64 MiB in
    // 16 MiB packs, the first stored after about 2 s: A goes once B relies on both kinds of chunk.
    await writeFile(data('zz-big'), big);
    const operationId = await startBackup();
    const b = await waitFor('backup B to claim every chunk of A and store a pack', async () => {
      const row = await cp.db
        .selectFrom('snapshots')
        .select('id')
        .where('operation_id', '=', operationId)
        .executeTakeFirst();
      if (!row) return undefined;
      const { n } = await cp.db
        .selectFrom('chunk_claims')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('snapshot_id', '=', row.id)
        .where(
          'chunk_id',
          'in',
          ofA.map((r) => r.chunk_id),
        )
        .executeTakeFirstOrThrow();
      const stored = (await packsOf(row.id)).filter((p) => p.status === 'stored');
      return Number(n) === ofA.length && stored.length > 0 ? row.id : undefined;
    });
    const uploadedByB = (await packsOf(b)).filter((p) => p.status === 'stored');

    await (await deleteSnapshot(a)).result();
    const during = await cp.db
      .selectFrom('snapshots')
      .select('status')
      .where('id', '=', b)
      .executeTakeFirstOrThrow();
    assert.equal(during.status, 'uploading', 'the prune and its collection ran while B was in flight');
    const left = await packObjects();
    for (const p of packsOfA)
      assert.ok(left.includes(p.object_key), `A's pack ${p.id}, claimed by B, is kept`);
    for (const p of uploadedByB)
      assert.ok(left.includes(p.object_key), `B's pack ${p.id}, stored before the prune, is kept`);

    const operation = await cp.finished(token, operationId, 180_000);
    assert.equal(operation.status, 'succeeded', JSON.stringify(operation));
    contents[b] = { x, 'zz-big': big };
    assert.deepEqual(await listed(), [b]);
    await restoreAllListed(contents);
  });

  it('finishes a collection cut after its objects went at the next prune, every listed snapshot restoring throughout', async () => {
    const b = (await listed())[0]!;
    const going = await packsOf(b);
    assert.ok(going.length >= 2, `${going.length} packs of B`);
    await rm(data('zz-big'));
    const c = await backUp();
    contents[c] = { x };

    // The fault, in PostgreSQL itself: the packs' rows cannot be deleted, so the collection stops after
    // marking them deleting and removing their objects, as a worker killed before its last step would.
    // Killing the in-process worker mid-activity would leave the activity to its 2-minute timeout.
    await sql`CREATE FUNCTION gc_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected: the collection dies before deleting the rows'; END $$`.execute(cp.db);
    await sql`CREATE TRIGGER gc_test_refuse BEFORE DELETE ON packs
      FOR EACH ROW EXECUTE FUNCTION gc_test_refuse()`.execute(cp.db);
    const prune = await deleteSnapshot(b);
    await waitFor("the collection to mark B's packs deleting and remove their objects", async () => {
      const now = await packsOf(b);
      const objects = await packObjects();
      return (
        now.length === going.length &&
        now.every((p) => p.status === 'deleting' && !objects.includes(p.object_key))
      );
    });
    assert.deepEqual(await listed(), [c]);
    await restoreAllListed(contents);

    // The prune dies with its collection unfinished; the next one, once the fault is gone, ends it.
    await prune.terminate("the test: the prune dies between its collection's steps");
    await sql`DROP TRIGGER gc_test_refuse ON packs`.execute(cp.db);
    await sql`DROP FUNCTION gc_test_refuse()`.execute(cp.db);
    const d = await backUp();
    await (await deleteSnapshot(d)).result();
    assert.deepEqual(await packsOf(b), [], "B's packs' rows are gone");
    assert.deepEqual(await listed(), [c]);
    await restoreAllListed(contents);
  });

  it('finishes a collection cut before its objects went at its retry, every listed snapshot restoring throughout', async () => {
    await writeFile(data('y'), noise(20 * 1024 * 1024, 3));
    const y = await backUp();
    const going = await packsOf(y);
    assert.ok(going.length >= 2, `${going.length} packs of Y`);
    await rm(data('y'));
    const z = await backUp();
    contents[z] = { x };

    // The fault: the object store unreachable from the moment the packs are marked deleting (a trigger
    // points the destination at a closed port in the marking transaction), so the collection fails
    // after its first step and before removing any object, as one killed there would.
    const destination = await cp.db
      .selectFrom('destinations')
      .select('endpoint')
      .where('id', '=', ids.destination)
      .executeTakeFirstOrThrow();
    const [closed] = (await freePorts(1)) as [number];
    await sql`CREATE FUNCTION gc_test_unreachable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE destinations SET endpoint = ${sql.lit(`http://127.0.0.1:${closed}`)} WHERE id = NEW.destination_id;
        RETURN NULL;
      END $$`.execute(cp.db);
    await sql`CREATE TRIGGER gc_test_unreachable AFTER UPDATE OF status ON packs
      FOR EACH ROW WHEN (NEW.status = 'deleting') EXECUTE FUNCTION gc_test_unreachable()`.execute(cp.db);
    const prune = await deleteSnapshot(y);
    await waitFor("the collection to fail after marking Y's packs deleting", async () => {
      return (await collectionAttempt(prune)) >= 2;
    });
    const now = await packsOf(y);
    const objects = await packObjects();
    assert.deepEqual(
      now.map((p) => [p.id, p.status, objects.includes(p.object_key)]).sort(),
      going.map((p) => [p.id, 'deleting', true]).sort(),
      'marked deleting, objects still there',
    );
    assert.ok(!(await listed()).includes(y), 'Y is no longer listed');
    await restoreAllListed(contents);

    await sql`DROP TRIGGER gc_test_unreachable ON packs`.execute(cp.db);
    await sql`DROP FUNCTION gc_test_unreachable()`.execute(cp.db);
    await cp.db
      .updateTable('destinations')
      .set({ endpoint: destination.endpoint })
      .where('id', '=', ids.destination)
      .execute();
    await prune.result();
    assert.deepEqual(await packsOf(y), [], "Y's packs' rows are gone");
    const left = await packObjects();
    for (const p of going) assert.ok(!left.includes(p.object_key), `${p.object_key} is removed`);
    await restoreAllListed(contents);
  });

  it('collects an upload its backup abandoned once its URL has expired, and removes its object', async () => {
    // The agent's side played through the agent's own client (as agent-packs.test.ts does), for a
    // second server of the team: two packs uploaded and never reported stored, then the backup failed
    // as the backup workflow records one whose agent died.
    const other = await createServer(cp.db, ids.team, 'web-2');
    const envId = (
      await createEnvironment(cp.db, ids.team, { name: 'cart', serverId: other.server.id, services: [] })
    ).id;
    const snapshot = await createSnapshot(cp.db, {
      teamId: ids.team,
      environmentId: envId,
      destinationId: ids.destination,
      sourceServerId: other.server.id,
      operationId: 'op_abandoned',
      keyId: 'key',
      formatVersion: 2,
      objectKeys: (id) => ({ data: `${id}/none`, manifest: `${id}/manifest.json.strackt` }),
    });
    const client = new ControlPlaneClient(cp.apiUrl, other.agentToken);
    const publicKey = (await getTeamPublicKey(cp.db, ids.team))!.publicKey;
    const dedupKey = await teamDedupKey(cp.db, cp.vault, ids.team);
    const uploaded: { id: string; key: string }[] = [];
    for (const seed of [1, 2]) {
      const { packId, url } = await client.startPack(snapshot.id);
      const parts: Buffer[] = [];
      const writer = new PackWriter(publicKey, (bytes) => parts.push(Buffer.from(bytes)));
      const plain = randomBytes(4096 * seed);
      writer.add(chunkIdOf(dedupKey, plain), plain);
      writer.finish();
      const bytes = Buffer.concat(parts);
      const path = join(dir, `${packId}.pack`);
      await writeFile(path, bytes);
      await putFile(url, path, bytes.length, { sha256: createHash('sha256').update(bytes).digest('hex') });
      const row = await cp.db
        .selectFrom('packs')
        .select('object_key')
        .where('id', '=', packId)
        .executeTakeFirstOrThrow();
      uploaded.push({ id: packId, key: row.object_key });
    }
    await markFailed(cp.db, snapshot.id, 'the agent died');
    const [expired, recent] = uploaded as [(typeof uploaded)[0], (typeof uploaded)[0]];
    // Registered 3 hours ago: its PUT URL (an hour) expired with room to spare, without waiting for it.
    await cp.db
      .updateTable('packs')
      .set({ created_at: sql<Date>`now() - interval '3 hours'` })
      .where('id', '=', expired.id)
      .execute();

    const e = await backUp();
    await (await deleteSnapshot(e)).result();
    const exists = (key: string) =>
      stackS3()
        .send(new HeadObjectCommand({ Bucket: ids.bucket, Key: key }))
        .then(
          () => true,
          (err: { name?: string }) => (err.name === 'NotFound' ? false : Promise.reject(err)),
        );
    const rows = await cp.db
      .selectFrom('packs')
      .select(['id', 'status'])
      .where('snapshot_id', '=', snapshot.id)
      .execute();
    assert.deepEqual(rows, [{ id: recent.id, status: 'uploading' }], 'only the expired upload is collected');
    assert.equal(await exists(expired.key), false, "the expired upload's object is removed");
    assert.equal(await exists(recent.key), true, 'an upload whose URL may still be used is left');
    await restoreAllListed(contents);
  });

  it('uploads again what a prune collected, though the agent cached its files as unchanged', async () => {
    const abandoned = (
      await cp.db.selectFrom('packs').select('object_key').where('status', '=', 'uploading').execute()
    ).map((p) => p.object_key);
    for (const snapshotId of await listed()) await (await deleteSnapshot(snapshotId)).result();
    assert.deepEqual((await packObjects()).sort(), abandoned.sort(), 'every stored pack went');
    const w = await backUp();
    contents[w] = { x };
    await restoreAllListed(contents);
  });

  /** The packs a collection wrote (a repack), with their chunks' ids and whether each is verified. */
  const repackedPacks = async () =>
    cp.db
      .selectFrom('packs')
      .innerJoin('pack_chunks', 'pack_chunks.pack_id', 'packs.id')
      .select(['packs.id', 'packs.object_key', 'pack_chunks.chunk_id', 'pack_chunks.verified_at'])
      .where('packs.destination_id', '=', ids.destination)
      .where('packs.snapshot_id', 'is', null)
      .where('packs.status', '=', 'stored')
      .execute();

  /** A pack holding a 9 MiB file and a 1 MiB one, then only the small one still referenced: mostly dead. */
  async function mostlyDeadPack(name: string, seed: number) {
    const small = noise(1024 * 1024, seed + 1);
    await writeFile(data(`${name}-big`), noise(9 * 1024 * 1024, seed));
    await writeFile(data(`${name}-small`), small);
    const first = await backUp();
    const [pack, ...more] = (await packsOf(first)).filter((p) => p.status === 'stored');
    assert.ok(pack && more.length === 0, 'both files in one pack');
    await rm(data(`${name}-big`));
    const kept = await backUp();
    const smallChunks = (
      await cp.db
        .selectFrom('pack_chunks')
        .select('chunk_id')
        .where('pack_id', '=', pack.id)
        .where('chunk_id', 'in', (eb) =>
          eb.selectFrom('snapshot_chunks').select('chunk_id').where('snapshot_id', '=', kept),
        )
        .execute()
    ).map((r) => r.chunk_id.toString('hex'));
    assert.ok(smallChunks.length > 0, "the kept snapshot still uses the pack's small file");
    return { first, kept, pack, small, smallChunks };
  }

  it('repacks a pack mostly dead: its live chunks copied and verified into a new pack, the old one deleted', async () => {
    const { first, kept, pack, small, smallChunks } = await mostlyDeadPack('m', 21);
    contents[kept] = { x, 'm-small': small };
    const before = await repackedPacks();

    await (await deleteSnapshot(first)).result();
    const objects = await packObjects();
    assert.ok(!objects.includes(pack.object_key), "the mostly dead pack's object is removed");
    assert.deepEqual(await packsOf(first), [], 'its row is gone');
    const made = (await repackedPacks()).filter((p) => !before.some((b) => b.id === p.id));
    assert.deepEqual(
      made.map((p) => p.chunk_id.toString('hex')).sort(),
      [...smallChunks].sort(),
      'the new pack holds exactly the live chunks',
    );
    assert.ok(
      made.every((p) => p.verified_at !== null),
      'checked as they were copied, so verified',
    );
    assert.ok(objects.includes(made[0]!.object_key), 'the new pack is in the bucket');
    await restoreAllListed(contents);
  });

  it('finishes a repack cut after its copy was stored without copying again, every listed snapshot restoring throughout', async () => {
    const { first, kept, pack, small } = await mostlyDeadPack('n', 31);
    contents[kept] = { x, 'n-small': small };
    const before = (await repackedPacks()).map((p) => p.id);

    // The fault, in PostgreSQL: no pack may be marked deleting, so the collection fails once its copy
    // is stored and before the old pack goes, as a worker killed there would; its retries fail alike.
    await sql`CREATE FUNCTION gc_test_refuse_mark() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected: the collection dies before marking packs deleting'; END $$`.execute(
      cp.db,
    );
    await sql`CREATE TRIGGER gc_test_refuse_mark BEFORE UPDATE OF status ON packs
      FOR EACH ROW WHEN (NEW.status = 'deleting') EXECUTE FUNCTION gc_test_refuse_mark()`.execute(cp.db);
    const prune = await deleteSnapshot(first);
    await waitFor('the collection to store its copy and fail twice', async () => {
      return (await collectionAttempt(prune)) >= 3;
    });
    const copies = new Set((await repackedPacks()).map((p) => p.id).filter((id) => !before.includes(id)));
    assert.equal(copies.size, 1, 'one copy, however many attempts');
    assert.deepEqual(
      (await packsOf(first)).map((p) => p.status),
      ['stored'],
      'the old pack is still there',
    );
    await restoreAllListed(contents);

    await sql`DROP TRIGGER gc_test_refuse_mark ON packs`.execute(cp.db);
    await sql`DROP FUNCTION gc_test_refuse_mark()`.execute(cp.db);
    await prune.result();
    assert.deepEqual(await packsOf(first), [], 'the old pack went at the retry');
    assert.ok(!(await packObjects()).includes(pack.object_key));
    const after = new Set((await repackedPacks()).map((p) => p.id).filter((id) => !before.includes(id)));
    assert.deepEqual([...after], [...copies], 'and no second copy was made');
    await restoreAllListed(contents);
  });

  it('holds a repacked pack while a restore told of it runs, then deletes it at the next collection', async () => {
    const { first, kept, pack, small } = await mostlyDeadPack('r', 41);
    contents[kept] = { x, 'r-small': small };
    const objectOf = async () =>
      (await packObjects()).includes(pack.object_key) ? 'in the bucket' : 'gone from the bucket';
    const statusOf = async () =>
      (await cp.db.selectFrom('packs').select('status').where('id', '=', pack.id).executeTakeFirst())?.status;
    // The same agent, downloading at 0.5 MiB/s: restoring the snapshot's 9 MiB takes some 18 s, a
    // prune with its repack a few.
    await agent.kill();
    agent = startAgent(cp.apiUrl, ids.agentToken, dataRoot, {
      STRACKT_UPLOAD_MIB_PER_SECOND: '8',
      STRACKT_DOWNLOAD_MIB_PER_SECOND: '0.5',
    });
    await cp.connected(token, ids.server);
    const restore = await cp.request<Operation>('POST', `/environments/${ids.env}/restores`, token, {
      snapshotId: kept,
      targetServerId: ids.server,
    });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    await waitFor('the restore to be fetching', async () => {
      const { body } = await cp.request<Operation>('GET', `/operations/${restore.body.id}`, token);
      return body.steps.find((s) => s.name === 'fetch, verify and unpack')?.status === 'running';
    });

    // The prune repacks the pack's live chunk; the restore was told of the old copy and may still read it.
    await (await deleteSnapshot(first)).result();
    const during = await cp.request<Operation>('GET', `/operations/${restore.body.id}`, token);
    assert.equal(during.body.status, 'running', 'the collection ran while the restore did');
    assert.deepEqual([await statusOf(), await objectOf()], ['deleting', 'in the bucket']);
    const copied = await cp.db
      .selectFrom('pack_chunks')
      .innerJoin('packs', 'packs.id', 'pack_chunks.pack_id')
      .select('packs.id')
      .where('packs.snapshot_id', 'is', null)
      .where('packs.status', '=', 'stored')
      .where('pack_chunks.chunk_id', 'in', (eb) =>
        eb.selectFrom('pack_chunks').select('chunk_id').where('pack_id', '=', pack.id),
      )
      .where('pack_chunks.chunk_id', 'in', (eb) =>
        eb.selectFrom('snapshot_chunks').select('chunk_id').where('snapshot_id', '=', kept),
      )
      .execute();
    assert.ok(copied.length > 0, 'its live chunk was copied into a new pack');

    const restored = await cp.finished(token, restore.body.id, 180_000);
    assert.equal(restored.status, 'succeeded', JSON.stringify(restored));
    assert.ok((await readFile(data('r-small'))).equals(small), 'the restored file is the snapshot’s');

    // The next collection, with no reader left, deletes what was held.
    const extra = await backUp();
    await (await deleteSnapshot(extra)).result();
    assert.deepEqual([await statusOf(), await objectOf()], [undefined, 'gone from the bucket']);
    await restoreAllListed(contents);
  });

  it('repacks a chunk that two of the packs hold into one copy', async () => {
    // Two backups storing one chunk at once leave it in two packs; repacked together, the new pack's
    // index could name it only once (found by the retention test once format 2 was the default).
    const team = (await getTeamPublicKey(cp.db, ids.team))!;
    const teamSecret = await openTeamSecretKey(cp.db, cp.vault, ids.team);
    const dedupKey = await teamDedupKey(cp.db, cp.vault, ids.team);
    const store = await cp.storeOf(ids.team, ids.destination);
    const shared = randomBytes(5000);
    const copies: BlobCopy[] = [];
    for (const own of [randomBytes(3000), randomBytes(7000)]) {
      const parts: Buffer[] = [];
      const writer = new PackWriter(team.publicKey, (bytes) => parts.push(Buffer.from(bytes)));
      for (const plain of [shared, own]) writer.add(chunkIdOf(dedupKey, plain), plain);
      const objectKey = `strackt/${ids.team}/test-packs/${uniqueName('pack')}`;
      for (const e of writer.finish()) copies.push({ ...e, chunkId: e.id, packId: objectKey, objectKey });
      await store.put(objectKey, Buffer.concat(parts));
    }
    const repacked = await repackBlobs(store, { ...team, secretKey: teamSecret }, dedupKey, copies);
    assert.deepEqual(repacked.damaged, []);
    const repackedIds = repacked.entries.map((e) => e.id.toString('hex'));
    assert.equal(repackedIds.length, 3, "the shared chunk once, and each pack's own");
    assert.equal(new Set(repackedIds).size, 3);
    const opened = [...readPack(repacked.bytes, { secretKey: teamSecret }, dedupKey)];
    assert.ok(opened.some(({ plain }) => Buffer.from(plain).equals(shared)));
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deletePackRows, garbage, markPacksDeleting } from '../../db/chunk-gc.data.ts';
import { chunksToUpload, packStored, recordSnapshotChunks, startPack } from '../../db/chunk-index.data.ts';
import { createDestination } from '../../db/destinations.data.ts';
import { createEnvironment } from '../../db/environments.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createSnapshot } from '../../db/snapshots.data.ts';
import type { Snapshot } from '../../db/tables/snapshot.table.ts';
import { createTeam } from '../../db/teams.data.ts';
import { Vault } from '../../db/vault.ts';
import { markCopiesBad } from '../../db/verify-chunks.data.ts';
import { createTestDatabase } from '../helpers/stack.ts';

const hex = (ids: Buffer[]) => ids.map((id) => id.toString('hex')).sort();
const newChunk = () => randomBytes(32);

/** Format 2's chunk index on real PostgreSQL: what counts as held, what is live, what may go. */
describe('the chunk index (format 2)', () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  const ids = { team: '', server: '', envA: '', envB: '', otherServer: '', envC: '' };

  /** A fresh destination, so each test sees only its own packs. */
  async function destination(): Promise<string> {
    const vault = new Vault(randomBytes(32));
    const input = {
      name: `d-${randomBytes(4).toString('hex')}`,
      ...{ endpoint: null, region: 'us-east-1', bucket: 'b', prefix: '', pathStyle: false },
      ...{ accessKeyId: 'AK', secretAccessKey: 'SK' },
    };
    return (await createDestination(testDb.db, vault, ids.team, input, new Date())).id;
  }

  function backup(destinationId: string, environmentId: string, serverId = ids.server): Promise<Snapshot> {
    return createSnapshot(testDb.db, {
      teamId: ids.team,
      environmentId,
      destinationId,
      sourceServerId: serverId,
      operationId: 'op_test',
      keyId: 'key',
      objectKeys: (id) => ({ data: `${id}/none`, manifest: `${id}/manifest.json.strackt` }),
    });
  }

  const setStatus = (snapshotId: string, status: Snapshot['status']) =>
    testDb.db.updateTable('snapshots').set({ status }).where('id', '=', snapshotId).execute();

  /** A pack the backup uploads and the control plane records, blobs of `length` bytes back to back. */
  async function upload(snapshotId: string, chunks: Buffer[], length = 100) {
    const pack = await startPack(testDb.db, {
      snapshotId,
      objectKey: `packs/${randomBytes(16).toString('hex')}`,
    });
    const entries = chunks.map((chunkId, i) => ({
      chunkId,
      offset: 112 + i * length,
      length,
      rawLength: 90,
    }));
    await packStored(testDb.db, pack.id, { sizeBytes: chunks.length * length, entries, verified: false });
    return pack;
  }

  /** A whole backup: asks, uploads what is missing, reports, completes. */
  async function completeBackup(destinationId: string, environmentId: string, chunks: Buffer[]) {
    const snapshot = await backup(destinationId, environmentId);
    const missing = await chunksToUpload(testDb.db, snapshot.id, chunks);
    const pack = missing.length ? await upload(snapshot.id, missing) : undefined;
    await recordSnapshotChunks(testDb.db, snapshot.id, chunks);
    await setStatus(snapshot.id, 'complete');
    return { snapshot, pack, uploaded: missing };
  }

  before(async () => {
    testDb = await createTestDatabase();
    ids.team = (await createTeam(testDb.db, 'dedup')).team.id;
    ids.server = (await createServer(testDb.db, ids.team, 'web-1')).server.id;
    ids.otherServer = (await createServer(testDb.db, ids.team, 'web-2')).server.id;
    for (const [env, serverId] of [
      ['envA', ids.server],
      ['envB', ids.server],
      ['envC', ids.otherServer],
    ] as const)
      ids[env] = (await createEnvironment(testDb.db, ids.team, { name: env, serverId, services: [] })).id;
  });

  after(async () => {
    await testDb?.drop();
  });

  it('asks a backup to upload only what its destination holds for it, once each', async () => {
    const dst = await destination();
    const [c1, c2, c3] = [newChunk(), newChunk(), newChunk()];
    const first = await completeBackup(dst, ids.envA, [c1!, c2!, c1!]);
    assert.deepEqual(hex(first.uploaded), hex([c1!, c2!]));
    const second = await backup(dst, ids.envA);
    assert.deepEqual(hex(await chunksToUpload(testDb.db, second.id, [c1!, c2!, c3!])), hex([c3!]));
    // Another destination holds nothing of it.
    const elsewhere = await backup(await destination(), ids.envA);
    assert.equal((await chunksToUpload(testDb.db, elsewhere.id, [c1!])).length, 1);
    await assert.rejects(chunksToUpload(testDb.db, second.id, [Buffer.alloc(31)]), /32 bytes/);
    await setStatus(second.id, 'failed');
    await assert.rejects(chunksToUpload(testDb.db, second.id, [c1!]), { code: 'snapshot upload_not_found' });
  });

  it('counts a chunk as held for the environments of the server that stored it, for another server’s only once verified (poisoning)', async () => {
    const dst = await destination();
    const c = newChunk();
    const { pack } = await completeBackup(dst, ids.envA, [c]);
    // The agent that stored it holds envB's data too: nothing it could spoil there that it cannot already.
    const sameServer = await backup(dst, ids.envB);
    assert.deepEqual(await chunksToUpload(testDb.db, sameServer.id, [c]), []);
    const other = await backup(dst, ids.envC, ids.otherServer);
    assert.deepEqual(hex(await chunksToUpload(testDb.db, other.id, [c])), hex([c]));
    // As a repack does once the control plane has opened the blob and hashed it to its id.
    await testDb.db
      .updateTable('pack_chunks')
      .set({ verified_at: new Date() })
      .where('pack_id', '=', pack!.id)
      .execute();
    assert.deepEqual(await chunksToUpload(testDb.db, other.id, [c]), []);
  });

  it('refuses a report of chunks the backup never claimed', async () => {
    const dst = await destination();
    const held = newChunk();
    await completeBackup(dst, ids.envA, [held]);
    const snapshot = await backup(dst, ids.envA);
    await chunksToUpload(testDb.db, snapshot.id, [held]);
    await assert.rejects(recordSnapshotChunks(testDb.db, snapshot.id, [held, newChunk()]), {
      code: 'chunks_not_claimed',
    });
    await recordSnapshotChunks(testDb.db, snapshot.id, [held]);
    const references = await testDb.db
      .selectFrom('snapshot_chunks')
      .select('chunk_id')
      .where('snapshot_id', '=', snapshot.id)
      .execute();
    assert.deepEqual(
      references.map((r) => r.chunk_id),
      [held],
    );
  });

  it('has the next backup upload anew a chunk found bad, then counts the new copy', async () => {
    const dst = await destination();
    const c = newChunk();
    const { pack } = await completeBackup(dst, ids.envA, [c]);
    assert.equal(await markCopiesBad(testDb.db, [{ chunkId: c, packId: pack!.id }]), 1);
    const again = await completeBackup(dst, ids.envA, [c]);
    assert.deepEqual(hex(again.uploaded), hex([c]));
    const third = await backup(dst, ids.envA);
    assert.deepEqual(await chunksToUpload(testDb.db, third.id, [c]), []);
  });

  it('keeps what kept snapshots and backups in flight rely on, and collects the rest', async () => {
    const dst = await destination();
    const [c1, c2] = [newChunk(), newChunk()];
    const old = await completeBackup(dst, ids.envA, [c1!, c2!]);
    // A backup in flight relies on c1 only; the snapshot that uploaded both is pruned.
    const inFlight = await backup(dst, ids.envA);
    await chunksToUpload(testDb.db, inFlight.id, [c1!]);
    await setStatus(old.snapshot.id, 'deleting');
    let found = await garbage(testDb.db, dst);
    assert.deepEqual(hex(found.deadChunks), hex([c2!]));
    assert.deepEqual(found.packsToDelete, []);
    // Half its bytes live is not yet worth a repack.
    assert.deepEqual(found.packsToRepack, []);
    // Its own upload, not yet reported, is live too.
    const fresh = await upload(inFlight.id, [newChunk()]);
    assert.equal((await garbage(testDb.db, dst)).deadChunks.length, 1);
    await setStatus(inFlight.id, 'failed');
    found = await garbage(testDb.db, dst);
    assert.equal(found.deadChunks.length, 3);
    assert.deepEqual(found.packsToDelete.map((p) => p.id).sort(), [old.pack!.id, fresh.id].sort());
  });

  it('deletes in two steps: marked packs are never held again, and a crash leaves them to retry', async () => {
    const dst = await destination();
    const c = newChunk();
    const { snapshot, pack } = await completeBackup(dst, ids.envA, [c]);
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack!.id]), [], 'still referenced');
    await setStatus(snapshot.id, 'deleting');
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack!.id]), [pack!.id]);
    const next = await backup(dst, ids.envA);
    assert.equal((await chunksToUpload(testDb.db, next.id, [c])).length, 1);
    // The objects' deletion crashed: the next collection finds the pack again, and may mark it again.
    assert.deepEqual(
      (await garbage(testDb.db, dst)).packsToDelete.map((p) => p.id),
      [pack!.id],
    );
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack!.id]), [pack!.id]);
    await deletePackRows(testDb.db, [pack!.id]);
    assert.deepEqual((await garbage(testDb.db, dst)).packsToDelete, []);
  });

  it('repacks a mostly dead pack: the old one goes only once its live chunks are stored again', async () => {
    const dst = await destination();
    const [live, dead1, dead2] = [newChunk(), newChunk(), newChunk()];
    const first = await backup(dst, ids.envA);
    const pack = await upload(first.id, [live!, dead1!, dead2!]);
    await recordSnapshotChunks(testDb.db, first.id, [live!]);
    await setStatus(first.id, 'complete');
    const [toRepack] = (await garbage(testDb.db, dst)).packsToRepack;
    assert.deepEqual(toRepack, { id: pack.id, objectKey: pack.object_key, sizeBytes: 300, liveBytes: 100 });
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack.id]), []);
    const copy = await startPack(testDb.db, {
      teamId: ids.team,
      destinationId: dst,
      objectKey: 'packs/copy',
    });
    const entries = [{ chunkId: live!, offset: 112, length: 100, rawLength: 90 }];
    await packStored(testDb.db, copy.id, { sizeBytes: 100, entries, verified: true });
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack.id]), [pack.id]);
    // The verified copy counts as held for any environment of the team, on any of its servers.
    const other = await backup(dst, ids.envC, ids.otherServer);
    assert.deepEqual(await chunksToUpload(testDb.db, other.id, [live!]), []);
  });

  it('keeps a pack claimed after the collection looked whose other copy is unverified (poisoning)', async () => {
    const dst = await destination();
    const c = newChunk();
    const old = await completeBackup(dst, ids.envA, [c]);
    await setStatus(old.snapshot.id, 'deleting');
    assert.deepEqual(
      (await garbage(testDb.db, dst)).packsToDelete.map((p) => p.id),
      [old.pack!.id],
    );
    // Another server's agent seals garbage under c's id; it counts as held only for its own.
    const forged = await backup(dst, ids.envC, ids.otherServer);
    await upload(forged.id, [c]);
    // Then, before the collection decides, a backup of A claims its own copy.
    const next = await backup(dst, ids.envA);
    assert.deepEqual(await chunksToUpload(testDb.db, next.id, [c]), []);
    assert.deepEqual(
      await markPacksDeleting(testDb.db, dst, [old.pack!.id]),
      [],
      'B’s copy is no copy for A',
    );
  });

  /** A pack registered `hours` ago: its PUT URL (an hour) long expired, without waiting for it. */
  const registeredHoursAgo = (packId: string, hours: number) =>
    testDb.db
      .updateTable('packs')
      .set({ created_at: new Date(Date.now() - hours * 3600_000) })
      .where('id', '=', packId)
      .execute();

  it('collects an upload a backup left behind only once its URL has long expired', async () => {
    const dst = await destination();
    const snapshot = await backup(dst, ids.envA);
    const pack = await startPack(testDb.db, { snapshotId: snapshot.id, objectKey: 'packs/left' });
    await setStatus(snapshot.id, 'failed');
    assert.deepEqual((await garbage(testDb.db, dst)).packsToDelete, []);
    await registeredHoursAgo(pack.id, 3);
    assert.deepEqual((await garbage(testDb.db, dst)).packsToDelete, [
      { id: pack.id, objectKey: 'packs/left' },
    ]);
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack.id]), [pack.id]);
  });

  it('collects a repack’s upload a crash left unrecorded once its time has long passed', async () => {
    const dst = await destination();
    const pack = await startPack(testDb.db, { teamId: ids.team, destinationId: dst, objectKey: 'packs/cut' });
    assert.deepEqual((await garbage(testDb.db, dst)).packsToDelete, [], 'a repack may still be storing it');
    await registeredHoursAgo(pack.id, 3);
    assert.deepEqual((await garbage(testDb.db, dst)).packsToDelete, [
      { id: pack.id, objectKey: 'packs/cut' },
    ]);
    assert.deepEqual(await markPacksDeleting(testDb.db, dst, [pack.id]), [pack.id]);
  });

  it('takes asks of one backup at once that claim the same held chunks in other orders, without a deadlock', async () => {
    // A backup of unchanged files asks about several batches at once, and the same chunk may be in
    // files of two of them (copies), in another order: their claims must not wait on each other.
    const dst = await destination();
    const held = Array.from({ length: 3000 }, newChunk);
    for (let at = 0; at < held.length; at += 1000)
      await completeBackup(dst, ids.envA, held.slice(at, at + 1000));
    for (let round = 0; round < 5; round++) {
      const next = await backup(dst, ids.envA);
      const answers = await Promise.all(
        [held, [...held].reverse(), [...held.slice(1500), ...held.slice(0, 1500)]].map((order) =>
          chunksToUpload(testDb.db, next.id, order, ids.server),
        ),
      );
      assert.deepEqual(answers, [[], [], []]);
    }
  });

  it('makes a backup’s claim wait while a collection decides on its destination', async () => {
    const dst = await destination();
    const c = newChunk();
    await completeBackup(dst, ids.envA, [c]);
    const next = await backup(dst, ids.envA);
    let settled = false;
    let asking: Promise<Buffer[]> | undefined;
    await testDb.db.transaction().execute(async (trx) => {
      await trx.selectFrom('destinations').select('id').where('id', '=', dst).forUpdate().execute();
      asking = chunksToUpload(testDb.db, next.id, [c]).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(settled, false);
    });
    assert.deepEqual(await asking, []);
  });
});

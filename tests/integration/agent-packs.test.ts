import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { startControlPlane, type ApiError, type ControlPlane } from '../helpers/control-plane.ts';
import { ControlPlaneClient, ControlPlaneError } from '../../agent/control-plane-client.ts';
import { maxPacksInFlight } from '../../common/pack-upload-limits.ts';
import { putFile } from '../../agent/http-upload.ts';
import type { StorageUrl } from '../../agent/storage-url.ts';
import { createEnvironment } from '../../db/environments.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createSnapshot } from '../../db/snapshots.data.ts';
import { getTeamPublicKey, teamDedupKey } from '../../db/team-keys.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { generateTeamKey } from '../../format/team-key.ts';
import { chunkIdOf } from '../../format/v2/chunk-id.ts';
import type { PackEntry } from '../../format/v2/pack-layout.ts';
import { PackWriter } from '../../format/v2/pack-writer.ts';
import { makeNetworkNamespace, startReceiver, type RunningReceiver } from '../helpers/receiver.ts';
import { stack, uniqueName } from '../helpers/stack.ts';

const hex = (ids: Buffer[]) => ids.map((id) => id.toString('hex')).sort();

/**
 * The agent's side of a format-2 upload (api/agent-packs.routes.ts) through the real API, database,
 * object store and receiver: what an agent uploads, and what a hostile one is refused. Server A's
 * agent is played through the agent's own client; B (same team) and C (another team) attack A's work.
 */
describe('format-2 uploads: chunks needed, packs, stored reports', () => {
  let cp: ControlPlane;
  const netns = makeNetworkNamespace();
  const dir = join(stack.runDir, uniqueName('agent-packs'));
  let receiver: RunningReceiver;
  const team = {
    id: '',
    token: '',
    publicKey: Buffer.alloc(0) as Buffer,
    dedupKey: Buffer.alloc(0) as Buffer,
  };
  const a = { id: '', token: '', envId: '' };
  const b = { token: '' };
  const c = { token: '' };
  const destinations: Record<'bucket' | 'receiver', string> = { bucket: '', receiver: '' };
  let client: ControlPlaneClient;

  const call = <T = ApiError>(token: string, method: string, path: string, body?: unknown) =>
    cp.request<T>(method, path, token, body);

  async function backup(destinationId: string, environmentId = a.envId, serverId = a.id) {
    const snapshot = await createSnapshot(cp.db, {
      teamId: team.id,
      environmentId,
      destinationId,
      sourceServerId: serverId,
      operationId: 'op_test',
      keyId: 'key',
      objectKeys: (id) => ({ data: `${id}/none`, manifest: `${id}/manifest.json.strackt` }),
    });
    return snapshot.id;
  }

  /** A pack of these chunks sealed to `publicKey`, written to a file as the agent's spool would. */
  async function sealPack(chunks: Buffer[], publicKey: Buffer = team.publicKey) {
    const parts: Buffer[] = [];
    const writer = new PackWriter(publicKey, (bytes) => parts.push(Buffer.from(bytes)));
    for (const plain of chunks) writer.add(chunkIdOf(team.dedupKey, plain), plain);
    const entries = writer.finish();
    const bytes = Buffer.concat(parts);
    const path = join(dir, `${randomBytes(8).toString('hex')}.pack`);
    await writeFile(path, bytes);
    return { path, bytes, entries, sizeBytes: bytes.length };
  }

  const upload = (url: StorageUrl, pack: { path: string; bytes: Buffer }) =>
    putFile(url, pack.path, pack.bytes.length, {
      sha256: createHash('sha256').update(pack.bytes).digest('hex'),
    });

  const wire = (entries: PackEntry[]) =>
    entries.map((e) => ({
      chunkId: e.id.toString('hex'),
      offset: e.offset,
      length: e.length,
      rawLength: e.rawLength,
    }));

  /** What the index holds for a snapshot: its packs, their chunks and its claims. */
  async function indexOf(snapshotId: string) {
    const packs = await cp.db
      .selectFrom('packs')
      .select(['id', 'status', 'size_bytes'])
      .where('snapshot_id', '=', snapshotId)
      .orderBy('created_at')
      .execute();
    const chunks = packs.length
      ? await cp.db
          .selectFrom('pack_chunks')
          .select(['pack_id', 'chunk_id', 'verified_at'])
          .where(
            'pack_id',
            'in',
            packs.map((p) => p.id),
          )
          .execute()
      : [];
    const claims = await cp.db
      .selectFrom('chunk_claims')
      .select('chunk_id')
      .where('snapshot_id', '=', snapshotId)
      .execute();
    return { packs, chunks, claims: hex(claims.map((r) => r.chunk_id)) };
  }

  before(async () => {
    await mkdir(dir, { recursive: true });
    cp = await startControlPlane();
    const created = await createTeam(cp.db, 'packs');
    Object.assign(team, { id: created.team.id, token: created.token });
    destinations.bucket = (await cp.addDestination(team.token)).destinationId;
    receiver = await startReceiver(join(dir, 'receiver'), netns);
    const enrolled = await call<{ destination: { id: string } }>(team.token, 'POST', '/destinations', {
      kind: 'receiver',
      name: 'home',
      url: receiver.url,
      fingerprint: receiver.fingerprint,
      enrolmentCode: receiver.enrolmentCode,
    });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    destinations.receiver = enrolled.body.destination.id;
    team.publicKey = (await getTeamPublicKey(cp.db, team.id))!.publicKey;
    team.dedupKey = await teamDedupKey(cp.db, cp.vault, team.id);

    const serverA = await createServer(cp.db, team.id, 'a');
    Object.assign(a, { id: serverA.server.id, token: serverA.agentToken });
    a.envId = (await createEnvironment(cp.db, team.id, { name: 'web', serverId: a.id, services: [] })).id;
    b.token = (await createServer(cp.db, team.id, 'b')).agentToken;
    const other = await createTeam(cp.db, 'other');
    c.token = (await createServer(cp.db, other.team.id, 'c')).agentToken;
    client = new ControlPlaneClient(cp.apiUrl, a.token);
  });

  after(async () => {
    await receiver?.program.kill();
    await cp?.stop();
    netns?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  for (const kind of ['bucket', 'receiver'] as const)
    it(`uploads only what the destination lacks, one pack at a time, to a ${kind}`, async () => {
      const plains = [randomBytes(3000), randomBytes(100), Buffer.from('a'.repeat(5000))];
      const ids = plains.map((p) => chunkIdOf(team.dedupKey, p));
      const first = await backup(destinations[kind]);
      assert.deepEqual([...(await client.chunksNeeded(first, [...ids, ids[0]!]))].sort(), hex(ids));

      const { packId, url } = await client.startPack(first);
      assert.match(packId, /^pack_/);
      assert.equal(url.pin !== undefined, kind === 'receiver', 'a pin exactly for a receiver');
      const pack = await sealPack(plains);
      await upload(url, pack);
      await client.packStored(first, packId, pack);
      const recorded = await indexOf(first);
      assert.deepEqual(
        recorded.packs.map((p) => [p.id, p.status, Number(p.size_bytes)]),
        [[packId, 'stored', pack.sizeBytes]],
      );
      assert.deepEqual(hex(recorded.chunks.map((r) => r.chunk_id)), hex(ids));
      assert.ok(
        recorded.chunks.every((r) => r.verified_at === null),
        'the index was read, not the blobs',
      );
      assert.deepEqual(recorded.claims, hex(ids), 'the chunks are kept for the backup that wrote them');

      // A retried report changes nothing, even one that says something else.
      await client.packStored(first, packId, pack);
      const again = await call(a.token, 'POST', `/agent/snapshots/${first}/packs/${packId}/stored`, {
        sizeBytes: pack.sizeBytes + 1,
        entries: wire(pack.entries).slice(1),
      });
      assert.equal(again.status, 204, JSON.stringify(again.body));
      assert.deepEqual(await indexOf(first), recorded);

      // The next backup of the environment finds them held, and uploads only what is new.
      const next = await backup(destinations[kind]);
      const fresh = randomBytes(64);
      const needed = await client.chunksNeeded(next, [...ids, chunkIdOf(team.dedupKey, fresh)]);
      assert.deepEqual([...needed], [chunkIdOf(team.dedupKey, fresh).toString('hex')]);
      assert.deepEqual((await indexOf(next)).claims, hex(ids));
    });

  it("refuses another server's and another team's agent everything about A's upload, changing nothing", async () => {
    const snapshotId = await backup(destinations.bucket);
    const ids = [randomBytes(32), randomBytes(32)];
    const { packId, url } = await client.startPack(snapshotId);
    const pack = await sealPack([randomBytes(500)]);
    await upload(url, pack);
    const before = await indexOf(snapshotId);
    const probes: [string, unknown?][] = [
      [`/agent/snapshots/${snapshotId}/chunks/needed`, { ids: hex(ids) }],
      [`/agent/snapshots/${snapshotId}/chunks/referenced`, { ids: hex(ids) }],
      [`/agent/snapshots/${snapshotId}/packs`],
      [
        `/agent/snapshots/${snapshotId}/packs/${packId}/stored`,
        { sizeBytes: pack.sizeBytes, entries: wire(pack.entries) },
      ],
    ];
    for (const [path, body] of probes)
      for (const [who, token] of [
        ['B', b.token],
        ['C', c.token],
      ] as const) {
        const res = await call(token, 'POST', path, body);
        assert.equal(res.status, 404, `${path} for ${who}: ${JSON.stringify(res.body)}`);
        assert.ok(!JSON.stringify(res.body).includes('url'), 'no URL in a refusal');
      }
    assert.deepEqual(await indexOf(snapshotId), before, 'nothing claimed, registered or recorded');

    // A backup that ended takes nothing more either, not even from its own server.
    await cp.db.updateTable('snapshots').set({ status: 'failed' }).where('id', '=', snapshotId).execute();
    for (const [path, body] of probes) {
      const res = await call(a.token, 'POST', path, body);
      assert.equal(res.status, 404, `${path} after the backup ended: ${JSON.stringify(res.body)}`);
    }
    assert.deepEqual(await indexOf(snapshotId), before);
  });

  it('refuses forged stored reports, recording nothing and leaving the pack to garbage collection', async () => {
    const snapshotId = await backup(destinations.bucket);
    const plains = [randomBytes(2000), randomBytes(300), randomBytes(10)];
    const { packId, url } = await client.startPack(snapshotId);
    const report = (over: Record<string, unknown>) =>
      call(a.token, 'POST', `/agent/snapshots/${snapshotId}/packs/${packId}/stored`, {
        sizeBytes: pack.sizeBytes,
        entries: wire(pack.entries),
        ...over,
      });
    const expectRefused = async (
      res: { status: number; body: ApiError },
      code: string,
      field: string | undefined,
      why: string,
    ) => {
      assert.equal(res.status, 422, `${why}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, why);
      assert.equal(res.body.error.field, field, why);
    };
    const pack = await sealPack(plains);
    await expectRefused(await report({}), 'pack_missing', undefined, 'reported before the upload');
    await upload(url, pack);

    const entries = wire(pack.entries);
    await expectRefused(
      await report({ sizeBytes: pack.sizeBytes - 1 }),
      'pack_size_mismatch',
      'sizeBytes',
      'a wrong size',
    );
    await expectRefused(
      await report({ entries: entries.slice(0, 2) }),
      'pack_index_mismatch',
      'entries',
      'an entry left out',
    );
    await expectRefused(
      await report({ entries: [...entries, { ...entries[0]!, chunkId: randomBytes(32).toString('hex') }] }),
      'pack_index_mismatch',
      'entries',
      'an entry the pack does not hold',
    );
    await expectRefused(
      await report({
        entries: [entries[0], { ...entries[1]!, chunkId: randomBytes(32).toString('hex') }, entries[2]],
      }),
      'pack_index_mismatch',
      'entries.1',
      'another chunk id claimed for a blob',
    );
    await expectRefused(
      await report({ entries: [entries[0], entries[1], { ...entries[2]!, rawLength: 11 }] }),
      'pack_index_mismatch',
      'entries.2',
      'another plaintext length',
    );
    await expectRefused(
      await report({ entries: [entries[0], entries[0], entries[2]] }),
      'validation_failed',
      'entries.1.chunkId',
      'one chunk twice',
    );

    // Packs the control plane cannot open: sealed to another key, or not a pack at all.
    const garbage = { path: join(dir, 'garbage.pack'), bytes: randomBytes(pack.sizeBytes) as Buffer };
    await writeFile(garbage.path, garbage.bytes);
    const forged = [
      { pack: await sealPack(plains, generateTeamKey().publicKey), why: 'sealed to another team key' },
      { pack: { ...garbage, sizeBytes: garbage.bytes.length }, why: 'random bytes' },
    ];
    for (const { pack: bad, why } of forged) {
      const started = await client.startPack(snapshotId);
      await upload(started.url, bad);
      const res = await call(
        a.token,
        'POST',
        `/agent/snapshots/${snapshotId}/packs/${started.packId}/stored`,
        {
          sizeBytes: bad.sizeBytes,
          entries: wire(pack.entries),
        },
      );
      await expectRefused(res, 'pack_unreadable', undefined, why);
    }

    // A pack of another backup (here, of the same server) is not this snapshot's to report.
    const otherSnapshot = await backup(destinations.bucket);
    const theirs = await call(a.token, 'POST', `/agent/snapshots/${otherSnapshot}/packs/${packId}/stored`, {
      sizeBytes: pack.sizeBytes,
      entries,
    });
    assert.equal(theirs.status, 404, JSON.stringify(theirs.body));
    assert.equal(theirs.body.error.code, 'pack_not_found');

    const left = await indexOf(snapshotId);
    assert.deepEqual(
      left.packs.map((p) => p.status),
      ['uploading', 'uploading', 'uploading'],
      'left for garbage collection',
    );
    assert.deepEqual([left.chunks, left.claims], [[], []], 'nothing recorded or claimed');
    assert.deepEqual(await indexOf(otherSnapshot), { packs: [], chunks: [], claims: [] });

    // The true report is then taken.
    await client.packStored(snapshotId, packId, pack);
    assert.equal((await indexOf(snapshotId)).chunks.length, 3);
  });

  it('bounds the packs a backup has registered and not reported stored (429), and frees one per report', async () => {
    const snapshotId = await backup(destinations.bucket);
    const start = () =>
      call<{ packId: string; url: string }>(a.token, 'POST', `/agent/snapshots/${snapshotId}/packs`);
    const first = await client.startPack(snapshotId);
    for (let k = 1; k < maxPacksInFlight; k++) assert.equal((await start()).status, 200);
    const over = (await start()) as unknown as { status: number; body: ApiError };
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.equal(over.body.error.code, 'too_many_packs');
    assert.equal(
      (await indexOf(snapshotId)).packs.length,
      maxPacksInFlight,
      'the refused call registered none',
    );
    const pack = await sealPack([randomBytes(100)]);
    await upload(first.url, pack);
    await client.packStored(snapshotId, first.packId, pack);
    assert.equal((await start()).status, 200);
  });

  it('checks what it is asked: chunk ids, their count, and the pack report’s shape, naming the field', async () => {
    const snapshotId = await backup(destinations.receiver);
    const ask = (body: unknown) =>
      call(a.token, 'POST', `/agent/snapshots/${snapshotId}/chunks/needed`, body);
    const cases: [unknown, string][] = [
      [{ ids: [randomBytes(32).toString('hex'), 'ab'] }, 'ids.1'],
      [{ ids: [randomBytes(32).toString('hex').toUpperCase()] }, 'ids.0'],
      [{ ids: [] }, 'ids'],
      [{ ids: Array.from({ length: 10_001 }, () => '0'.repeat(64)) }, 'ids'],
      [{ ids: ['0'.repeat(64)], more: 1 }, 'more'],
    ];
    for (const [body, field] of cases) {
      const res = await ask(body);
      assert.equal(res.status, 422, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.error.field, field);
    }
    const { packId } = await client.startPack(snapshotId);
    const stored = (body: unknown) =>
      call(a.token, 'POST', `/agent/snapshots/${snapshotId}/packs/${packId}/stored`, body);
    const entry = { chunkId: '0'.repeat(64), offset: 112, length: 41, rawLength: 0 };
    for (const [body, field] of [
      [{ sizeBytes: -1, entries: [entry] }, 'sizeBytes'],
      [{ sizeBytes: 1e12, entries: [entry] }, 'sizeBytes'],
      [{ sizeBytes: 200, entries: [] }, 'entries'],
      [{ sizeBytes: 200, entries: [{ ...entry, offset: 2 ** 32 }] }, 'entries.0.offset'],
      [{ sizeBytes: 200, entries: Array.from({ length: 5_001 }, () => entry) }, 'entries'],
    ] as const) {
      const res = await stored(body);
      assert.equal(res.status, 422, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.error.field, field);
    }
    const bogus = await call(
      a.token,
      'POST',
      `/agent/snapshots/${snapshotId}/packs/pack_${'a'.repeat(16)}/stored`,
      {
        sizeBytes: 200,
        entries: [entry],
      },
    );
    assert.equal(bogus.status, 404);
    await assert.rejects(client.chunksNeeded('snap_madeup', [randomBytes(32)]), (err: unknown) => {
      assert.ok(err instanceof ControlPlaneError);
      assert.equal(err.status, 404);
      return true;
    });
  });
});

import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import {
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RefusedEntryError } from '../../format/entry-rules.ts';
import { generateTeamKey } from '../../format/team-key.ts';
import { dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { FormatV2Error } from '../../format/v2/errors.ts';
import { manifestChunking, type ManifestV2 } from '../../format/v2/manifest-v2.ts';
import { packDataKey } from '../../format/v2/pack-reader.ts';
import { restoreTree, type ChunkLocation, type PackSource } from '../../format/v2/tree-restorer.ts';
import { writeTree, type ChunkStore, type FinishedPack } from '../../format/v2/tree-writer.ts';

const team = generateTeamKey();
const dedupKey = dedupKeyOf(team.secretKey);
const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/** A destination in memory, read back by byte ranges as a restore reads a bucket. */
class MemoryPacks implements ChunkStore, PackSource {
  readonly packs = new Map<string, Buffer>();
  readonly index = new Map<string, ChunkLocation>();
  readonly reads: { packId: string; start: number; end: number }[] = [];
  /** The packs each unpack said it would read. */
  readonly plans: string[][] = [];

  async needed(ids: string[]) {
    return new Set(ids.filter((id) => !this.index.has(id)));
  }

  async storePack(pack: FinishedPack) {
    const packId = `p${this.packs.size}`;
    this.packs.set(packId, Buffer.concat(pack.bytes));
    for (const e of pack.entries)
      this.index.set(e.id.toString('hex'), {
        packId,
        offset: e.offset,
        length: e.length,
        rawLength: e.rawLength,
      });
  }

  plan(packIds: string[]) {
    this.plans.push(packIds);
  }

  async locate(ids: string[]) {
    return new Map(ids.flatMap((id) => (this.index.has(id) ? [[id, this.index.get(id)!] as const] : [])));
  }

  async dataKey(packId: string) {
    return packDataKey(this.packs.get(packId)!.subarray(0, 112), { secretKey: team.secretKey });
  }

  async read(packId: string, start: number, end: number) {
    this.reads.push({ packId, start, end });
    return Buffer.from(this.packs.get(packId)!.subarray(start, end));
  }
}

let dir: string;
const source = () => join(dir, 'source');
let n = 0;
const staging = async () => {
  const at = join(dir, `staging-${n++}`);
  await mkdir(at);
  return at;
};

async function snapshot(store: MemoryPacks, root = source()): Promise<ManifestV2> {
  const out = await writeTree({
    root: () => root,
    volumes: ['data', 'logs'],
    dedupKey,
    publicKey: team.publicKey,
    store,
  });
  return {
    format: 'strackt-snapshot',
    formatVersion: 2,
    snapshotId: 'snap_1',
    teamId: 'team_1',
    environmentId: 'env_1',
    environmentName: 'shop',
    sourceServerId: 'srv_1',
    createdAt: new Date().toISOString(),
    keyId: '00',
    services: [{ name: 'db', volumes: ['data', 'logs'] }],
    volumes: out.volumes,
    chunking: manifestChunking,
    entries: out.entries,
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strackt-restore-v2-'));
  await mkdir(join(source(), 'data/sub'), { recursive: true });
  await mkdir(join(source(), 'logs'), { recursive: true });
  await writeFile(join(source(), 'data/big'), noise(6 * 1024 * 1024, 1), { mode: 0o640 });
  await writeFile(join(source(), 'data/copy'), noise(6 * 1024 * 1024, 1));
  await writeFile(join(source(), 'data/sub/small'), 'small\n');
  await writeFile(join(source(), 'data/empty'), '');
  await writeFile(join(source(), 'logs/app.log'), 'line\n'.repeat(100_000));
  await symlink('sub/small', join(source(), 'data/link'));
  await link(join(source(), 'data/sub/small'), join(source(), 'data/hard'));
  await utimes(join(source(), 'data/sub'), 1_700_000_000, 1_700_000_000);
});

after(() => rm(dir, { recursive: true, force: true }));

describe('restoreTree', () => {
  it('puts back every entry, bytes, modes and times, fetching each shared chunk once', async () => {
    const store = new MemoryPacks();
    const manifest = await snapshot(store);
    const at = await staging();
    const result = await restoreTree({ manifest, staging: at, source: store, asRoot: true, dedupKey });
    for (const e of manifest.entries) {
      const restored = await lstat(join(at, e.path));
      const original = await lstat(join(source(), e.path));
      assert.equal(restored.mode, original.mode, e.path);
      if (e.type !== 'symlink')
        assert.equal(Math.round(restored.mtimeMs), Math.round(original.mtimeMs), e.path);
      if (e.type === 'file')
        assert.deepEqual(await readFile(join(at, e.path)), await readFile(join(source(), e.path)), e.path);
    }
    assert.equal(await readlink(join(at, 'data/link')), 'sub/small');
    assert.equal(manifest.entries.find((e) => e.path === 'data/sub/small')?.type, 'hardlink');
    assert.equal((await lstat(join(at, 'data/hard'))).ino, (await lstat(join(at, 'data/sub/small'))).ino);
    assert.equal(result.files, 5);
    // big and copy are the same 6 MiB: read once.
    const fetched = store.reads.reduce((sum, r) => sum + r.end - r.start, 0);
    assert.ok(fetched < 7.5 * 1024 * 1024, `${fetched} bytes fetched`);
  });

  it('fetches while the tree is still being made, each chunk written once its file is', async () => {
    // Many small files in one pack, so the first range holds chunks of the last file made.
    const many = join(dir, 'many');
    await mkdir(join(many, 'data'), { recursive: true });
    await mkdir(join(many, 'logs'));
    const names = Array.from({ length: 400 }, (_, k) => `f${String(k).padStart(3, '0')}`);
    for (const [k, name] of names.entries()) await writeFile(join(many, 'data', name), noise(2048, k));
    const store = new MemoryPacks();
    const manifest = await snapshot(store, many);
    const at = await staging();
    let readBeforeLastMade = false;
    const watching: PackSource = {
      locate: (ids) => store.locate(ids),
      dataKey: (id) => store.dataKey(id),
      read: async (id, start, end) => {
        const last = await lstat(join(at, 'data', names.at(-1)!)).catch(() => undefined);
        readBeforeLastMade ||= last === undefined;
        return store.read(id, start, end);
      },
    };
    await restoreTree({ manifest, staging: at, source: watching, asRoot: true, dedupKey });
    assert.ok(readBeforeLastMade, 'a range was fetched before the tree was whole');
    for (const name of names)
      assert.deepEqual(
        await readFile(join(at, 'data', name)),
        await readFile(join(many, 'data', name)),
        name,
      );
  });

  it('fails when an entry cannot be made, the fetching stopped with it', async () => {
    const store = new MemoryPacks();
    const manifest = await snapshot(store);
    const at = await staging();
    // A fresh unpack makes every file itself: one already there is refused, not written into.
    await mkdir(join(at, 'logs'));
    await writeFile(join(at, 'logs/app.log'), 'not ours\n');
    await assert.rejects(
      restoreTree({ manifest, staging: at, source: store, asRoot: true, dedupKey }),
      (err: NodeJS.ErrnoException) => err.code === 'EEXIST',
    );
    assert.equal(await readFile(join(at, 'logs/app.log'), 'utf8'), 'not ours\n');
  });

  it('resumes an interrupted unpack in its staging, fetching only the chunks it had not written', async () => {
    // Three packs' worth, read in three ranges at least.
    const large = join(dir, 'large');
    await mkdir(join(large, 'data'), { recursive: true });
    await mkdir(join(large, 'logs'));
    for (const [k, name] of ['a', 'b', 'c'].entries())
      await writeFile(join(large, 'data', name), noise(14 * 1024 * 1024, 10 + k));
    await writeFile(join(large, 'logs/app.log'), 'line\n'.repeat(1000));
    await symlink('a', join(large, 'data/link'));
    // Chunks shared by two files, repeated within one, a hard link and an empty file.
    await writeFile(join(large, 'data', 'copy'), noise(14 * 1024 * 1024, 10));
    const block = noise(3 * 1024 * 1024, 20);
    await writeFile(join(large, 'data', 'twice'), Buffer.concat([block, block, block]));
    await link(join(large, 'data', 'b'), join(large, 'data', 'hard'));
    await writeFile(join(large, 'data', 'empty'), '');
    const store = new MemoryPacks();
    const manifest = await snapshot(store, large);
    const at = await staging();
    // The first attempt stops at its fifth read, as an agent killed mid-fetch would: its first packs
    // are written whole by then.
    const failing: PackSource = {
      locate: (ids) => store.locate(ids),
      dataKey: (id) => store.dataKey(id),
      read: async (id, start, end) => {
        if (store.reads.length === 4) throw new Error('killed');
        return store.read(id, start, end);
      },
    };
    const written: string[] = [];
    const whole: number[] = [];
    const onWritten = async (ids: string[], entriesDone: number) => {
      written.push(...ids);
      whole.push(entriesDone);
    };
    await assert.rejects(
      restoreTree({
        manifest,
        staging: at,
        source: failing,
        asRoot: true,
        dedupKey,
        concurrency: 1,
        onWritten,
      }),
      /killed/,
    );
    assert.ok(written.length > 0, 'some chunks were written before the stop');
    assert.ok(
      whole.every((n, k) => k === 0 || n >= whole[k - 1]!),
      `entries whole only grow: ${whole}`,
    );
    const before = new Set(written);
    // The machine lost power: the journal kept a record whose chunk's bytes never reached the disk.
    const lost = written.at(-1)!;
    const place = manifest.entries
      .filter((e) => e.type === 'file')
      .flatMap((e) => {
        let offset = 0;
        return e.chunks!.map((id) => {
          const here = { path: e.path, id, offset };
          offset += store.index.get(id)!.rawLength;
          return here;
        });
      })
      .find((p) => p.id === lost)!;
    const fd = await open(join(at, place.path), 'r+');
    await fd.write(Buffer.alloc(store.index.get(lost)!.rawLength), 0, undefined, place.offset);
    await fd.close();
    const trusted = new Set([...before].filter((id) => id !== lost));
    store.reads.length = 0;

    await restoreTree({
      manifest,
      staging: at,
      source: store,
      asRoot: true,
      dedupKey,
      written: before,
      onWritten,
    });
    for (const e of manifest.entries.filter((e) => e.type === 'file'))
      assert.deepEqual(await readFile(join(at, e.path)), await readFile(join(large, e.path)), e.path);
    assert.equal(await readlink(join(at, 'data/link')), 'a');
    assert.equal((await lstat(join(at, 'data/hard'))).ino, (await lstat(join(at, 'data/b'))).ino);
    const twice = manifest.entries.find((e) => e.path === 'data/twice')!.chunks!;
    assert.ok(new Set(twice).size < twice.length, 'a chunk repeated within a file');
    assert.ok(store.reads.length > 0, 'the rest was fetched');
    // No range fetched by the first attempt whose chunks it wrote is fetched again, but the lost one's.
    for (const r of store.reads) {
      const ids = [...store.index].filter(
        ([, l]) => l.packId === r.packId && l.offset >= r.start && l.offset < r.end,
      );
      assert.ok(
        ids.some(([id]) => !trusted.has(id)),
        `${r.packId}:${r.start} holds only chunks written before`,
      );
    }
    // Only the packs holding chunks still to write were planned (the agent asks access for those).
    const toWrite = manifest.entries.flatMap((e) => e.chunks ?? []).filter((id) => !trusted.has(id));
    assert.deepEqual(new Set(store.plans.at(-1)), new Set(toWrite.map((id) => store.index.get(id)!.packId)));
    assert.ok(
      store.plans.at(-1)!.length < store.packs.size,
      'a pack whose chunks were all written is left out',
    );
    const lostAt = store.index.get(lost)!;
    assert.ok(
      store.reads.some(
        (r) => r.packId === lostAt.packId && r.start <= lostAt.offset && lostAt.offset < r.end,
      ),
      'the chunk lost was fetched again',
    );
    assert.equal(whole.at(-1), manifest.entries.filter((e) => e.type !== 'hardlink').length);
  });

  it('refuses a manifest naming a way out of the staging folder before writing anything', async () => {
    const store = new MemoryPacks();
    const manifest = await snapshot(store);
    manifest.entries.push({ ...manifest.entries.find((e) => e.type === 'file')!, path: 'data/../../escape' });
    const at = await staging();
    await assert.rejects(
      restoreTree({ manifest, staging: at, source: store, asRoot: true, dedupKey }),
      RefusedEntryError,
    );
    assert.deepEqual(await readdir(at), []);
  });

  it('refuses a chunk the destination does not hold, and a pack whose blob was altered', async () => {
    const store = new MemoryPacks();
    const manifest = await snapshot(store);
    // data/hard sorts first: it is the file, data/sub/small the hard link to it.
    const small = manifest.entries.find((e) => e.path === 'data/hard')!;
    store.index.delete(small.chunks![0]!);
    await assert.rejects(
      restoreTree({ manifest, staging: await staging(), source: store, asRoot: true, dedupKey }),
      (err) => err instanceof FormatV2Error && err.kind === 'chunk_missing',
    );

    const intact = new MemoryPacks();
    const again = await snapshot(intact);
    const big = again.entries.find((e) => e.path === 'data/big')!;
    const where = intact.index.get(big.chunks![0]!)!;
    intact.packs.get(where.packId)![where.offset + 100]! ^= 1;
    await assert.rejects(
      restoreTree({ manifest: again, staging: await staging(), source: intact, asRoot: true, dedupKey }),
      (err) => err instanceof FormatV2Error && err.kind === 'blob_altered',
    );
  });

  it('refuses chunks that open but are not what their ids say (checked on the chunk threads)', async () => {
    const store = new MemoryPacks();
    const manifest = await snapshot(store);
    const otherKey = dedupKeyOf(generateTeamKey().secretKey);
    const at = await staging();
    await assert.rejects(
      restoreTree({ manifest, staging: at, source: store, asRoot: true, dedupKey: otherKey }),
      (err) => err instanceof FormatV2Error && err.kind === 'chunk_mismatch',
    );
    // Nothing written of a chunk that failed its check.
    assert.equal(
      (await readFile(join(at, 'data/big'))).some((b) => b !== 0),
      false,
    );
  });
});

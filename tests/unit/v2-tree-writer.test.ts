import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import {
  appendFile,
  link,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateTeamKey } from '../../format/team-key.ts';
import { dedupKeyOf } from '../../format/v2/chunk-id.ts';
import type { ManifestV2Entry } from '../../format/v2/manifest-v2.ts';
import { readPack } from '../../format/v2/pack-reader.ts';
import { packTargetBytes } from '../../format/v2/pack-layout.ts';
import {
  writeTree,
  type CachedFile,
  type ChunkStore,
  type TreeWriterInput,
} from '../../format/v2/tree-writer.ts';

const team = generateTeamKey();
const dedupKey = dedupKeyOf(team.secretKey);
const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

/** A destination in memory: the packs it was given, opened with the team key as a restore would. */
class MemoryStore implements ChunkStore {
  readonly chunks = new Map<string, Buffer>();
  readonly asked: string[][] = [];
  packs = 0;
  largestPack = 0;

  async needed(ids: string[]): Promise<Set<string>> {
    this.asked.push(ids);
    return new Set(ids.filter((id) => !this.chunks.has(id)));
  }

  async storePack(pack: { bytes: Buffer[]; sizeBytes: number }): Promise<void> {
    const bytes = Buffer.concat(pack.bytes);
    assert.equal(bytes.length, pack.sizeBytes);
    for (const { entry, plain } of readPack(bytes, { secretKey: team.secretKey }, dedupKey))
      this.chunks.set(entry.id.toString('hex'), Buffer.from(plain));
    this.packs++;
    this.largestPack = Math.max(this.largestPack, pack.sizeBytes);
  }

  /** A file's bytes as a restore assembles them. */
  contentOf(entry: ManifestV2Entry): Buffer {
    return Buffer.concat(
      entry.chunks!.map((id) => this.chunks.get(id) ?? assert.fail(`chunk ${id} missing`)),
    );
  }
}

let dir: string;
const root = () => dir;
const write = (store: ChunkStore, extra: Partial<TreeWriterInput> = {}) =>
  writeTree({ root, volumes: ['pgdata', 'files'], dedupKey, publicKey: team.publicKey, store, ...extra });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strackt-tree-'));
  await mkdir(join(dir, 'pgdata/base/1'), { recursive: true });
  await mkdir(join(dir, 'files'), { recursive: true });
  await writeFile(join(dir, 'pgdata/PG_VERSION'), '17\n');
  await writeFile(join(dir, 'pgdata/base/1/big'), noise(5 * 1024 * 1024, 1));
  await writeFile(join(dir, 'pgdata/base/1/empty'), '');
  // The same 3 MiB twice: its chunks are stored once.
  await writeFile(join(dir, 'files/a'), noise(3 * 1024 * 1024, 2));
  await writeFile(join(dir, 'files/b'), noise(3 * 1024 * 1024, 2));
  await writeFile(join(dir, 'files/Z-upper'), 'sorted by bytes: before lowercase');
  await symlink('a', join(dir, 'files/link'));
  await link(join(dir, 'files/a'), join(dir, 'files/hard'));
});

after(() => rm(dir, { recursive: true, force: true }));

describe('writeTree', () => {
  it('lists every entry in tar --sort=name order, and every file is its chunks', async () => {
    const store = new MemoryStore();
    const out = await write(store);
    assert.deepEqual(
      out.entries.map((e) => `${e.type} ${e.path}`),
      [
        'directory files',
        'file files/Z-upper',
        'file files/a',
        'file files/b',
        'hardlink files/hard',
        'symlink files/link',
        'directory pgdata',
        'file pgdata/PG_VERSION',
        'directory pgdata/base',
        'directory pgdata/base/1',
        'file pgdata/base/1/big',
        'file pgdata/base/1/empty',
      ],
    );
    for (const e of out.entries.filter((x) => x.type === 'file'))
      assert.deepEqual(store.contentOf(e), await readFile(join(dir, e.path)), e.path);
    assert.equal(out.entries.find((e) => e.path === 'files/hard')?.target, 'files/a');
    assert.equal(out.entries.find((e) => e.path === 'files/link')?.target, 'a');
    assert.deepEqual(out.entries.find((e) => e.path === 'pgdata/base/1/empty')?.chunks, []);
    // a and b share their chunks: 3 MiB stored once, beside 5 MiB and the two small files.
    const unique = 3 * 1024 * 1024 + 5 * 1024 * 1024 + 3 + 33;
    assert.equal(out.figures.bytesStored, unique);
    assert.equal(out.figures.bytesRead, unique + 3 * 1024 * 1024);
    assert.equal(new Set(out.chunkIds).size, out.chunkIds.length);
    assert.deepEqual(new Set(out.chunkIds), new Set(store.chunks.keys()));
    assert.deepEqual(
      out.volumes.map((v) => [v.name, v.entries, v.bytes]),
      [
        ['files', 6, 6 * 1024 * 1024 + 33],
        ['pgdata', 6, 5 * 1024 * 1024 + 3],
      ],
    );
  });

  it('reads no unchanged file again, and stores only what changed', async () => {
    const store = new MemoryStore();
    const first = await write(store);
    const again = await write(store, { previous: first.files });
    assert.equal(again.figures.filesRead, 0);
    assert.equal(again.figures.filesUnchanged, 6);
    assert.equal(again.figures.chunksStored, 0);
    assert.deepEqual(again.entries, first.entries);

    await appendFile(join(dir, 'pgdata/base/1/big'), noise(64 * 1024, 3));
    const changed = await write(store, { previous: again.files });
    assert.equal(changed.figures.filesRead, 1);
    // The append changes the file's last chunk only: the first ones are found stored.
    assert.ok(changed.figures.bytesStored < 2 * 1024 * 1024, `${changed.figures.bytesStored} bytes stored`);
    const big = changed.entries.find((e) => e.path === 'pgdata/base/1/big')!;
    assert.deepEqual(store.contentOf(big), await readFile(join(dir, 'pgdata/base/1/big')));
  });

  it("asks ahead about a large changed file's chunks, then only about the ones it did not have", async () => {
    // 24 MiB: more chunks than a batch holds, the files worth asking about ahead.
    const path = join(dir, 'pgdata/base/1/large');
    await writeFile(path, noise(24 * 1024 * 1024, 7));
    try {
      const store = new MemoryStore();
      const first = await write(store);
      const large = (w: { entries: ManifestV2Entry[] }) =>
        w.entries.find((e) => e.path === 'pgdata/base/1/large')!;
      const before = large(first).chunks!;
      await appendFile(path, noise(64 * 1024, 4));
      store.asked.length = 0;
      const changed = await write(store, { previous: first.files });
      const [ahead, ...later] = store.asked;
      assert.deepEqual(new Set(ahead), new Set(before));
      const askedLater = new Set(later.flat());
      assert.deepEqual(
        before.filter((id) => askedLater.has(id)),
        [],
      );
      const fresh = large(changed).chunks!.filter((id) => !before.includes(id));
      assert.ok(fresh.length > 0);
      assert.ok(fresh.every((id) => askedLater.has(id)));
      assert.deepEqual(store.contentOf(large(changed)), await readFile(path));
    } finally {
      await rm(path);
    }
  });

  describe('a changed file with the chunks it had', () => {
    let own: string;
    const path = () => join(own, 'v/db');
    const capture = (store: ChunkStore, previous?: TreeWriterInput['previous']) =>
      writeTree({ root: () => own, volumes: ['v'], dedupKey, publicKey: team.publicKey, store, previous });
    const chunks = (w: { entries: ManifestV2Entry[] }) => w.entries.find((e) => e.path === 'v/db')!.chunks!;
    /** The second capture of the changed file beside a capture of it from nothing, on another store. */
    const changedBeside = async (
      change: () => Promise<void>,
      note = (files: Map<string, CachedFile>) => files,
    ) => {
      await writeFile(path(), noise(24 * 1024 * 1024, 21));
      const store = new MemoryStore();
      const first = await capture(store);
      await change();
      const changed = await capture(store, note(first.files));
      const fresh = await capture(new MemoryStore());
      assert.deepEqual(
        store.contentOf(changed.entries.find((e) => e.path === 'v/db')!),
        await readFile(path()),
      );
      return { first, changed, fresh, store };
    };

    before(async () => {
      own = await mkdtemp(join(tmpdir(), 'strackt-tree-'));
      await mkdir(join(own, 'v'));
    });
    after(() => rm(own, { recursive: true, force: true }));

    it('takes again those still in place, hashed not cut, and lists the chunks cutting gives', async () => {
      const { first, changed, fresh } = await changedBeside(async () => {
        const fd = await open(path(), 'r+');
        await fd.write(noise(8 * 1024, 22), 0, 8 * 1024, 13 * 1024 * 1024 + 100);
        await fd.close();
      });
      assert.deepEqual(chunks(changed), chunks(fresh));
      const kept = chunks(changed).filter((id) => chunks(first).includes(id));
      assert.ok(kept.length >= chunks(first).length - 2, `${kept.length} of ${chunks(first).length} kept`);
      // All of the file read, most of it only hashed; what changed was cut and stored.
      assert.equal(changed.figures.bytesRead, 24 * 1024 * 1024);
      // Every chunk it had again was taken in place: the cutting stopped where they started again.
      const { lengths } = changed.files.get('v/db')!;
      const inPlace = chunks(changed).reduce((n, id, k) => n + (kept.includes(id) ? lengths![k]! : 0), 0);
      assert.equal(changed.figures.bytesInPlace, inPlace);
      assert.equal(changed.figures.chunksStored, chunks(changed).length - kept.length);
      assert.deepEqual(
        changed.files.get('v/db')!.lengths!.reduce((a, b) => a + b),
        24 * 1024 * 1024,
      );
    });

    it('cuts a file appended to from its last chunk, and one cut short where it ends', async () => {
      const appended = await changedBeside(() => appendFile(path(), noise(64 * 1024, 23)));
      assert.deepEqual(chunks(appended.changed), chunks(appended.fresh));
      const lastLength = appended.first.files.get('v/db')!.lengths!.at(-1)!;
      assert.equal(appended.changed.figures.bytesInPlace, 24 * 1024 * 1024 - lastLength);

      const truncated = await changedBeside(() => truncate(path(), 20 * 1024 * 1024 + 5));
      assert.deepEqual(chunks(truncated.changed), chunks(truncated.fresh));
      assert.ok(truncated.changed.figures.bytesInPlace > 0);
    });

    it('makes the same snapshot from a wrong note: lengths moved, ids of other chunks', async () => {
      const wrong = (files: Map<string, CachedFile>) => {
        const f = files.get('v/db')!;
        const lengths = [...f.lengths!];
        [lengths[1], lengths[2]] = [lengths[2]!, lengths[1]!];
        const ids = [...f.chunks];
        [ids[5], ids[6]] = [ids[6]!, ids[5]!];
        ids[9] = ids[0]!;
        return new Map([['v/db', { ...f, chunks: ids, lengths }]]);
      };
      const { first, changed, fresh, store } = await changedBeside(() => appendFile(path(), 'x'), wrong);
      assert.deepEqual(chunks(changed), chunks(fresh));
      assert.ok(changed.figures.bytesInPlace > 0);
      // The bytes a wrong length had checked are no chunk: never stored.
      const listed = new Set([...chunks(first), ...chunks(changed)]);
      assert.deepEqual(
        [...store.chunks.keys()].filter((id) => !listed.has(id)),
        [],
      );
      const garbled = (files: Map<string, CachedFile>) =>
        new Map([['v/db', { ...files.get('v/db')!, lengths: [1, -5, 24 * 1024 * 1024] }]]);
      const second = await changedBeside(() => appendFile(path(), 'y'), garbled);
      assert.deepEqual(chunks(second.changed), chunks(second.fresh));
      assert.equal(second.changed.figures.bytesInPlace, 0);
    });

    it('cuts a file written all over to its end once its checks mostly fail', async () => {
      // A byte in each 256 KiB of its first 16 MiB (a chunk is 512 KiB or more): then no check finds
      // its chunk, and the last 8 MiB, which would be found in place, are cut too, the checks given up
      // after a few.
      const { changed, fresh } = await changedBeside(async () => {
        const fd = await open(path(), 'r+');
        for (let at = 0; at < 16 * 1024 * 1024; at += 256 * 1024) await fd.write(Buffer.from([1]), 0, 1, at);
        await fd.close();
      });
      assert.deepEqual(chunks(changed), chunks(fresh));
      assert.equal(changed.figures.bytesInPlace, 0);
    });

    it('sends again a chunk in place that the destination no longer holds', async () => {
      await writeFile(path(), noise(24 * 1024 * 1024, 24));
      const store = new MemoryStore();
      const first = await capture(store);
      const lost = chunks(first)[3]!;
      store.chunks.delete(lost);
      await appendFile(path(), 'z');
      const changed = await capture(store, first.files);
      assert.ok(store.chunks.has(lost));
      assert.ok(chunks(changed).includes(lost));
      // Taken in place as the others, and sent from the bytes checked: the reading did not wait to
      // learn which ones the destination still holds.
      const lastLength = first.files.get('v/db')!.lengths!.at(-1)!;
      assert.equal(changed.figures.bytesInPlace, 24 * 1024 * 1024 - lastLength);
      assert.equal(changed.figures.chunksStored, 2);
      assert.deepEqual(
        store.contentOf(changed.entries.find((e) => e.path === 'v/db')!),
        await readFile(path()),
      );
    });
  });

  it('stores nothing for the same files of another environment on the destination', async () => {
    const store = new MemoryStore();
    await write(store);
    const other = await write(store);
    assert.equal(other.figures.chunksStored, 0);
    assert.equal(store.packs > 0, true);
  });

  it('reads an unchanged file again when the destination lost one of its chunks', async () => {
    const store = new MemoryStore();
    const first = await write(store);
    const big = first.entries.find((e) => e.path === 'pgdata/base/1/big')!;
    store.chunks.delete(big.chunks![1]!);
    const again = await write(store, { previous: first.files });
    assert.equal(again.figures.filesRead, 1);
    assert.equal(again.figures.chunksStored, 1);
    assert.deepEqual(store.contentOf(big), await readFile(join(dir, 'pgdata/base/1/big')));
  });

  it('lets the sources go once read, before the last pack is stored', async () => {
    const events: string[] = [];
    const store = new MemoryStore();
    const storePack = store.storePack.bind(store);
    store.storePack = async (p) => {
      events.push('pack');
      await storePack(p);
    };
    await write(store, { onSourceRead: () => events.push('read') });
    assert.equal(events.at(-1), 'pack');
    assert.ok(events.includes('read'));
  });

  it('packs compressible chunks as zstd frames and the rest raw, across several packs', async () => {
    // Sealed on the chunk threads, each blob straight into its place in the pack being filled.
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(1_000_000));
    const own = await mkdtemp(join(tmpdir(), 'strackt-tree-'));
    try {
      await mkdir(join(own, 'v'));
      await writeFile(join(own, 'v/noise'), noise(20 * 1024 * 1024, 7));
      await writeFile(join(own, 'v/text'), text);
      const store = new MemoryStore();
      const out = await writeTree({
        root: () => own,
        volumes: ['v'],
        dedupKey,
        publicKey: team.publicKey,
        store,
      });
      for (const e of out.entries.filter((x) => x.type === 'file'))
        assert.deepEqual(store.contentOf(e), await readFile(join(own, e.path)), e.path);
      assert.ok(store.packs >= 2, `${store.packs} packs`);
      // No pack past its target by more than 1 MiB and its index: the pack buffer is sized so.
      assert.ok(store.largestPack <= packTargetBytes + 1024 * 1024 + 64 * 1024, `${store.largestPack} bytes`);
      // The noise stored raw, the text as a frame a small part of its size.
      assert.ok(
        out.figures.packedBytes < 20 * 1024 * 1024 + text.length / 10,
        `${out.figures.packedBytes} bytes`,
      );
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('refuses a FIFO as version 1 does, naming it', async () => {
    const own = await mkdtemp(join(tmpdir(), 'strackt-tree-'));
    try {
      await mkdir(join(own, 'v'));
      execFileSync('mkfifo', [join(own, 'v/a-pipe')]);
      const store = new MemoryStore();
      await assert.rejects(
        writeTree({ root: () => own, volumes: ['v'], dedupKey, publicKey: team.publicKey, store }),
        { name: 'ArchiveError', message: 'cannot back up v/a-pipe: it is a FIFO' },
      );
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

import type { BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveError } from '../archive-writer.ts';
import { askBatch, ChunkPacker } from './chunk-packer.ts';
import { Chunker } from './chunker.ts';
import type { ManifestV2Entry } from './manifest-v2.ts';
import type { PackEntry } from './pack-layout.ts';

// The version-2 capture of a tree of volumes (docs/FORMAT.md, "Version 2"): walked in the order GNU
// tar's --sort=name gives version 1, each regular file cut into chunks, each chunk the destination
// lacks compressed, sealed and packed. A file whose size, times and inode match the previous
// capture's is not read at all: its chunks are the ones that capture listed, once the destination
// confirms it still holds them (garbage collection or a verification may have dropped one since).

/** What the writer is told of the destination, and where it hands the packs it fills. */
export interface ChunkStore {
  /** Of these chunk ids (hex), those the destination lacks; the others now count for this backup. */
  needed(ids: string[]): Promise<Set<string>>;
  /**
   * Takes a finished pack; resolves when the writer may go on (the store bounds what it holds) and
   * the store is done with the pack's bytes, which the writer then reuses.
   */
  storePack(pack: FinishedPack): Promise<void>;
}

export interface FinishedPack {
  /** The pack object's bytes, in order. */
  bytes: Buffer[];
  sizeBytes: number;
  entries: PackEntry[];
}

/** What the next capture compares a file with to skip reading it (restic's rule). */
export interface CachedFile {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  chunks: string[];
}

export interface TreeWriterInput {
  /** The folder holding a volume's folder (the live one, or its file-system snapshot), as tar's -C. */
  root: (volume: string) => string;
  volumes: string[];
  dedupKey: Buffer;
  publicKey: Buffer;
  store: ChunkStore;
  /** The previous capture's files, by manifest path. */
  previous?: ReadonlyMap<string, CachedFile>;
  /** Called once nothing more will be read from the sources: the hold may end. */
  onSourceRead?: () => void;
  onProgress?: (bytesRead: number) => void;
}

interface Unchanged {
  entry: ManifestV2Entry;
  source: string;
  cached: CachedFile;
}

export interface TreeWritten {
  entries: ManifestV2Entry[];
  volumes: { name: string; entries: number; bytes: number }[];
  /** Every chunk the entries reference, once each. */
  chunkIds: string[];
  /** This capture's files, for the next one. */
  files: Map<string, CachedFile>;
  figures: {
    filesRead: number;
    filesUnchanged: number;
    bytesRead: number;
    chunksStored: number;
    /** The new chunks' plaintext. */
    bytesStored: number;
    packs: number;
    /** The packs holding them, as sent. */
    packedBytes: number;
    /** Sockets: tar leaves them out of version 1 too (a FIFO or a device fails the capture, as there). */
    skipped: number;
  };
}

const readBytes = 1024 * 1024;
/**
 * A directory's entries are looked at (lstat) this many at once: one at a time, the walk of the
 * benchmark's 10 GiB (2,781 entries) took 190 ms, 54 ms so.
 */
const statsAtOnce = 256;
/**
 * Batches of unchanged files asked about at once: the walk goes on meanwhile, each answer taken in
 * turn (a file the destination no longer fully holds is read then). One at a time, an unchanged
 * backup of 10 GiB waited on eight answers in a row.
 */
const asksAtOnce = 4;

/** A changed file of this many chunks (some 16 MiB, a packer's batch) is asked about ahead. */
const expectedAtLeast = 16;

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * A file's bytes, the next read started before the bytes read are handed on: the thread pool reads
 * while this thread cuts and hashes. Two buffers in turn; the chunker copies what it is given
 * before asking for more, so a buffer is free again by the time a read goes into it.
 */
async function* fileBytes(path: string, [a, b]: readonly [Buffer, Buffer]): AsyncGenerator<Uint8Array> {
  const file = await open(path, 'r');
  let [into, done] = [a, b];
  let reading = file.read(into, 0, readBytes, null);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) return;
      [into, done] = [done, into];
      reading = file.read(into, 0, readBytes, null);
      yield done.subarray(0, bytesRead);
    }
  } finally {
    // A read still under way must end before its file closes (the consumer may stop early).
    await reading.catch(() => {});
    await file.close();
  }
}

const unchanged = (
  c: CachedFile | undefined,
  s: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint },
) =>
  c !== undefined &&
  c.size === Number(s.size) &&
  c.mtimeNs === String(s.mtimeNs) &&
  c.ctimeNs === String(s.ctimeNs) &&
  c.ino === String(s.ino);

/**
 * Walks the volumes and writes the chunks the destination lacks into packs through `store`; the
 * manifest is then the caller's to seal (it knows the snapshot's ids and times). Files unchanged
 * since `previous` are confirmed in batches, and those with a chunk the destination no longer holds
 * are read after all, before the sources are let go.
 */
export async function writeTree(input: TreeWriterInput): Promise<TreeWritten> {
  const packer = new ChunkPacker(input.store, input.publicKey, input.dedupKey);
  const chunker = new Chunker();
  const readBufs = [Buffer.allocUnsafe(readBytes), Buffer.allocUnsafe(readBytes)] as const;
  const entries: ManifestV2Entry[] = [];
  const files = new Map<string, CachedFile>();
  const volumes: TreeWritten['volumes'] = [];
  const figures = { filesRead: 0, filesUnchanged: 0, bytesRead: 0, skipped: 0 };
  /** Hard links: the first path of each inode with more than one name. */
  const linked = new Map<string, string>();
  /** Unchanged files whose chunks are still to be confirmed held. */
  let toConfirm: Unchanged[] = [];
  let toConfirmChunks = 0;
  /** Batches asked about, oldest first. */
  const asking: { batch: Unchanged[]; ids: string[]; needed: Promise<Set<string>> }[] = [];

  /** Files read whose chunk ids are still being hashed: each fills its entry in once they are. */
  const hashing: Promise<void>[] = [];

  const readFile = async (entry: ManifestV2Entry, source: string, stamp: CachedFile) => {
    const ids: Promise<string>[] = [];
    let size = 0;
    for await (const chunk of chunker.chunksOf(fileBytes(source, readBufs))) {
      size += chunk.length;
      figures.bytesRead += chunk.length;
      ids.push((await packer.add(chunk)).id);
      input.onProgress?.(figures.bytesRead);
    }
    figures.filesRead++;
    // What was read is what the snapshot holds, should the file have changed size under a weak hold.
    entry.size = size;
    const file = { ...stamp, size, chunks: [] as string[] };
    files.set(entry.path, file);
    const hashed = Promise.all(ids).then((chunks) => {
      entry.chunks = chunks;
      file.chunks = chunks;
    });
    hashed.catch(() => {}); // awaited once all is read; a failing thread fails the packing first
    hashing.push(hashed);
  };

  const ask = () => {
    const batch = toConfirm;
    toConfirm = [];
    toConfirmChunks = 0;
    const ids = [...new Set(batch.flatMap((f) => f.cached.chunks))].filter((id) => !packer.known.has(id));
    const needed = ids.length ? input.store.needed(ids) : Promise.resolve(new Set<string>());
    needed.catch(() => {}); // awaited in its turn
    asking.push({ batch, ids, needed });
  };

  /** The oldest answer taken: by the walk alone, so that files are read one at a time. */
  const settle = async () => {
    const { batch, ids, needed: answer } = asking.shift()!;
    const needed = await answer;
    for (const id of ids) if (!needed.has(id)) packer.known.add(id);
    for (const f of batch) {
      if (f.cached.chunks.some((id) => needed.has(id))) {
        await readFile(f.entry, f.source, f.cached);
      } else figures.filesUnchanged++;
    }
  };

  const visit = async (
    path: string,
    source: string,
    volume: { entries: number; bytes: number },
    s: BigIntStats,
  ) => {
    const base = {
      path,
      mode: Number(s.mode & 0o7777n),
      uid: Number(s.uid),
      gid: Number(s.gid),
      mtime: Number(s.mtimeNs) / 1e9,
    };
    volume.entries++;
    if (s.isDirectory()) {
      entries.push({ ...base, type: 'directory' });
      const names = (await readdir(source)).sort(byteOrder);
      for (let at = 0; at < names.length; at += statsAtOnce) {
        const some = names.slice(at, at + statsAtOnce);
        const stats = await Promise.all(some.map((name) => lstat(join(source, name), { bigint: true })));
        for (const [k, name] of some.entries())
          await visit(`${path}/${name}`, join(source, name), volume, stats[k]!);
      }
    } else if (s.isSymbolicLink()) {
      entries.push({ ...base, type: 'symlink', target: await readlink(source) });
    } else if (s.isFile()) {
      const inode = `${s.dev}:${s.ino}`;
      const first = s.nlink > 1n ? linked.get(inode) : undefined;
      if (first !== undefined) {
        entries.push({ ...base, type: 'hardlink', target: first });
        return;
      }
      if (s.nlink > 1n) linked.set(inode, path);
      const entry: ManifestV2Entry = { ...base, type: 'file', size: Number(s.size), chunks: [] };
      entries.push(entry);
      const cached = input.previous?.get(path);
      const stamp = {
        size: Number(s.size),
        mtimeNs: String(s.mtimeNs),
        ctimeNs: String(s.ctimeNs),
        ino: String(s.ino),
      };
      if (cached && unchanged(cached, s)) {
        entry.chunks = cached.chunks;
        files.set(path, { ...stamp, chunks: cached.chunks });
        toConfirm.push({ entry, source, cached });
        toConfirmChunks += cached.chunks.length;
        if (toConfirmChunks >= askBatch) ask();
        if (asking.length >= asksAtOnce) await settle();
      } else {
        // Changed: most of its chunks are likely the ones it had (a file appended to, a database's
        // pages), asked about while it is read if it fills whole batches: a smaller one's are asked
        // with the batch it shares.
        if (cached && cached.chunks.length >= expectedAtLeast) packer.expect(cached.chunks);
        await readFile(entry, source, { ...stamp, chunks: [] });
      }
    } else if (s.isFIFO() || s.isCharacterDevice() || s.isBlockDevice()) {
      // Refused as version 1 refuses them (archive-writer.ts): no restore could make one, and a
      // snapshot silently without it would not be the volume the customer has.
      const kind = s.isFIFO() ? 'FIFO' : s.isCharacterDevice() ? 'character device' : 'block device';
      throw new ArchiveError(`cannot back up ${path}: it is a ${kind}`);
    } else {
      volume.entries--;
      figures.skipped++;
    }
  };

  try {
    for (const name of [...input.volumes].sort(byteOrder)) {
      const volume = { name, entries: 0, bytes: 0 };
      const source = join(input.root(name), name);
      await visit(name, source, volume, await lstat(source, { bigint: true }));
      volumes.push(volume);
    }
    ask();
    while (asking.length) await settle();
    // Every chunk read is in the packer's hands by now: the hold need not wait for the packing.
    input.onSourceRead?.();
    await packer.finish();
    await Promise.all(hashing);
  } finally {
    await packer.close();
  }
  // Sizes as read: a file re-read after its confirmation may have another size than at its visit.
  for (const volume of volumes)
    volume.bytes = entries
      .filter((e) => e.path === volume.name || e.path.startsWith(`${volume.name}/`))
      .reduce((n, e) => n + (e.size ?? 0), 0);

  const chunkIds = [...new Set(entries.flatMap((e) => e.chunks ?? []))];
  return { entries, volumes, chunkIds, files, figures: { ...figures, ...packer.figures } };
}

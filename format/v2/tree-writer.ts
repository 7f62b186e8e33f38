import type { BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveError } from '../archive-writer.ts';
import { askBatch, ChunkPacker } from './chunk-packer.ts';
import { chunkParams, Chunker } from './chunker.ts';
import type { ManifestV2Entry } from './manifest-v2.ts';
import type { PackEntry } from './pack-layout.ts';
import { readAt } from './read-at.ts';

// The version-2 capture of a tree of volumes (docs/FORMAT.md, "Version 2"): walked in the order GNU
// tar's --sort=name gives version 1, each regular file cut into chunks, each chunk the destination
// lacks compressed, sealed and packed. A file whose size, times and inode match the previous
// capture's is not read at all: its chunks are the ones that capture listed, once the destination
// confirms it still holds them (garbage collection or a verification may have dropped one since).
// A changed file is read, but where its bytes are still one of the chunks it had, at the same place,
// that chunk is only hashed again, not cut: see readFile.

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
  /** The chunks' lengths, in order (a note from before they were kept has none). */
  lengths?: number[];
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
    /** Of bytesRead, those of changed files found to be the chunks they had, in place: not cut. */
    bytesInPlace: number;
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
/**
 * A changed file's chunks are checked in place while the bytes hashed for checks that failed (or
 * were made ahead of one that failed) stay under 8 MiB and half of those found in place; then it is
 * cut to its end. A chunk found in place costs its hash; one that is not, its hash and then its cut
 * too. Where pages are written all over a file (pgbench's 4,000 transactions touch most MiB of a
 * 3 GiB cluster), checking every chunk doubled the hashing: 7.7 s for the benchmark's changed round
 * against 6.3, measured. The slack lets a file whose first chunk always changes (a header) be checked.
 */
const checkSlack = 8 * 1024 * 1024;
/** Checks made ahead of the one awaited: enough to keep the chunk threads hashing. */
const checksAhead = 4;

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * A file's bytes from `from` to its end, the next read started before the bytes read are handed on:
 * the thread pool reads while this thread cuts and hashes. Two buffers in turn; the chunker copies
 * what it is given before asking for more, so a buffer is free again by the time a read goes into it.
 */
async function* fileBytes(
  file: FileHandle,
  from: number,
  [a, b]: readonly [Buffer, Buffer],
): AsyncGenerator<Uint8Array> {
  let [into, done] = [a, b];
  let at = from;
  let reading = file.read(into, 0, readBytes, at);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) return;
      at += bytesRead;
      [into, done] = [done, into];
      reading = file.read(into, 0, readBytes, at);
      yield done.subarray(0, bytesRead);
    }
  } finally {
    // A read still under way must end before its file closes (the consumer may stop early).
    await reading.catch(() => {});
  }
}

/**
 * The previous capture's chunks of a file, if its note gives their lengths and they make its size:
 * by where each started. Anything else in the note is checked as the bytes are read.
 */
function previousChunks(previous: CachedFile | undefined): Map<number, number> | undefined {
  const lengths = previous?.lengths;
  if (!previous || !lengths?.length || lengths.length !== previous.chunks.length) return undefined;
  const starts = new Map<number, number>();
  let at = 0;
  for (const [k, length] of lengths.entries()) {
    if (!Number.isInteger(length) || length < 1 || length > chunkParams.max) return undefined;
    starts.set(at, k);
    at += length;
  }
  return at === previous.size ? starts : undefined;
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
  const figures = { filesRead: 0, filesUnchanged: 0, bytesRead: 0, bytesInPlace: 0, skipped: 0 };
  /** Hard links: the first path of each inode with more than one name. */
  const linked = new Map<string, string>();
  /** Unchanged files whose chunks are still to be confirmed held. */
  let toConfirm: Unchanged[] = [];
  let toConfirmChunks = 0;
  /** Batches asked about, oldest first. */
  const asking: { batch: Unchanged[]; ids: string[]; needed: Promise<Set<string>> }[] = [];

  /** Files read whose chunk ids are still being hashed: each fills its entry in once they are. */
  const hashing: Promise<void>[] = [];

  /**
   * Reads a file and cuts it into chunks, or, given the chunks it had (`had`), takes each of them
   * again whose bytes are the same at the
   * same place. That is the chunk cutting would give: a cut depends only on the chunk's own bytes,
   * from a start the file's beginning or a cut before, so the same bytes from the same start end at
   * the same cut. Where one differs, the file is cut from there, until a cut falls where one of the
   * chunks it had started. A database's file with some pages written is read into place and hashed,
   * not also copied and cut; a file appended to is cut only from its last chunk. Every chunk taken is
   * hashed from the bytes read: a wrong note costs a cut, never a wrong snapshot.
   */
  const readFile = async (entry: ManifestV2Entry, source: string, stamp: CachedFile, had?: CachedFile) => {
    const ids: Promise<string>[] = [];
    const lengths: number[] = [];
    const taken = (id: Promise<string>, length: number) => {
      ids.push(id);
      lengths.push(length);
      figures.bytesRead += length;
      input.onProgress?.(figures.bytesRead);
    };
    const starts = previousChunks(had);
    let at = 0;
    const handle = await open(source, 'r');
    try {
      const n = had?.chunks.length ?? 0;
      /** The chunk it had that started at `at`, while there is one. */
      let k = starts ? 0 : undefined;
      /** Bytes found in place, and hashed for nothing by checks. */
      let [found, missed] = [0, 0];
      const checking = () => missed <= checkSlack + found / 2;
      for (;;) {
        // Chunk k onwards checked in order, some ahead of the one awaited: each read into its place
        // among the packer's chunks and hashed on the threads.
        const checks: { id: string; length: number; hashed: Promise<string> }[] = [];
        let [ahead, next] = [k ?? n, at];
        let issuing = true;
        while (k !== undefined && k < n) {
          while (issuing && ahead < n && checks.length < checksAhead && checking()) {
            const [id, length] = [had!.chunks[ahead]!, had!.lengths![ahead]!];
            // A last one was cut by the file's end, so it is only the same if the file still ends there.
            const ends = async () => (await handle.read(readBufs[0], 0, 1, next + length)).bytesRead === 0;
            const check =
              ahead < n - 1 || (await ends())
                ? await packer.check(length, (into) => readAt(handle, into, next), id)
                : undefined;
            if (!check) issuing = false;
            else {
              checks.push({ id, length, hashed: check.id });
              next += length;
              ahead++;
            }
          }
          const c = checks.shift();
          if (!c) break;
          if ((await c.hashed) !== c.id) {
            missed += c.length + checks.reduce((bytes, later) => bytes + later.length, 0);
            break;
          }
          taken(Promise.resolve(c.id), c.length);
          found += c.length;
          figures.bytesInPlace += c.length;
          at += c.length;
          k++;
        }
        if (k === n) break;
        k = undefined;
        for await (const chunk of chunker.chunksOf(fileBytes(handle, at, readBufs))) {
          taken((await packer.add(chunk)).id, chunk.length);
          at += chunk.length;
          k = checking() ? starts?.get(at) : undefined;
          if (k !== undefined) break;
        }
        if (k === undefined) break;
      }
    } finally {
      await handle.close();
    }
    figures.filesRead++;
    // What was read is what the snapshot holds, should the file have changed size under a weak hold.
    entry.size = at;
    const file = { ...stamp, size: at, chunks: [] as string[], lengths };
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
        await readFile(f.entry, f.source, f.cached, f.cached);
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
        files.set(path, { ...stamp, chunks: cached.chunks, lengths: cached.lengths });
        toConfirm.push({ entry, source, cached });
        toConfirmChunks += cached.chunks.length;
        if (toConfirmChunks >= askBatch) ask();
        if (asking.length >= asksAtOnce) await settle();
      } else {
        // Changed: most of its chunks are likely the ones it had (a file appended to, a database's
        // pages), asked about while it is read if it fills whole batches: a smaller one's are asked
        // with the batch it shares.
        const expected = cached && cached.chunks.length >= expectedAtLeast;
        if (expected) packer.expect(cached.chunks);
        await readFile(entry, source, { ...stamp, chunks: [] }, expected ? cached : undefined);
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

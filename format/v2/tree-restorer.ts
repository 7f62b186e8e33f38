import { constants } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lstat,
  lutimes,
  lchown,
  mkdir,
  open,
  rm,
  symlink,
  utimes,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { EntryRules } from '../entry-rules.ts';
import { blobOverhead } from './blob.ts';
import { chunkIdOf } from './chunk-id.ts';
import { ChunkThreads } from './chunk-threads.ts';
import { maxChunkBytes } from './chunker.ts';
import { FormatV2Error } from './errors.ts';
import type { ManifestV2 } from './manifest-v2.ts';
import { readAt } from './read-at.ts';

// Unpacking a version-2 snapshot into a staging folder (docs/FORMAT.md, "Version 2"): the entries are
// checked by version 1's rules first (nothing is written for a manifest that names a way out of the
// folder), the files are made empty while the packs are read once each, by byte ranges holding the
// blobs needed, several at a time, and every chunk is checked and written where each file wants it.
// A chunk shared by many files, or many times in one, is fetched once. An interrupted unpack resumes in
// the staging it left, fetching only the chunks it had not written yet.

/** Where a chunk lies, as the control plane's index says (checked again when its blob is opened). */
export interface ChunkLocation {
  packId: string;
  offset: number;
  length: number;
  rawLength: number;
}

/**
 * What the restorer reads through: the destination's packs, and each pack's data key. A pack that is
 * gone or cannot be read is refused with a FormatV2Error, as damage, not as a failure to retry.
 */
export interface PackSource {
  locate(chunkIds: string[]): Promise<Map<string, ChunkLocation>>;
  dataKey(packId: string): Promise<Buffer>;
  /**
   * Told before any pack is read: the packs the unpack reads, in the order it reads them (a resumed
   * unpack's, only those holding chunks still to write).
   */
  plan?(packIds: string[]): void;
  /**
   * Bytes [start, end) of the pack object, at the start of `into` (large enough) if the source can:
   * the caller's again once they are opened.
   */
  read(packId: string, start: number, end: number, into: Buffer): Promise<Buffer>;
}

export interface TreeRestoreInput {
  manifest: ManifestV2;
  staging: string;
  source: PackSource;
  asRoot: boolean;
  dedupKey: Buffer;
  /** Packs read at once. */
  concurrency?: number;
  /**
   * Given when `staging` is an interrupted attempt's, kept: the chunks it wrote at all their targets
   * and checked. They are not fetched again once read back whole; the tree is completed where it
   * stands.
   */
  written?: ReadonlySet<string>;
  /**
   * Awaited once the tree is made and after every range's chunks are written, with those chunks' ids
   * and the entries whole so far (made, and for a file every chunk written): what a resume may skip.
   */
  onWritten?: (chunkIds: string[], entriesDone: number) => Promise<void>;
  /**
   * Called before every range is fetched and after every chunk is written: throws to stop the unpack
   * (the disk is nearly full), the chunk threads writing nothing more than the chunks they hold.
   */
  roomCheck?: () => void;
}

/** Neighbouring blobs are fetched in one request unless this many unneeded bytes lie between them. */
const gapBytes = 256 * 1024;
/** One request's bytes at most (or one blob's, if larger): what a read holds in memory. */
const rangeBytes = 8 * 1024 * 1024;
/** A reader's buffer, shared with the chunk threads: one request's bytes, or the largest blob. */
const readerBytes = Math.max(rangeBytes, blobOverhead + maxChunkBytes);

interface Target {
  file: number;
  at: number;
}

interface Wanted {
  id: string;
  location: ChunkLocation;
  targets: Target[];
}

function ranges(blobs: Wanted[]): Wanted[][] {
  const sorted = [...blobs].sort((a, b) => a.location.offset - b.location.offset);
  const out: Wanted[][] = [];
  let current: Wanted[] = [];
  for (const blob of sorted) {
    const first = current[0]?.location;
    const last = current.at(-1)?.location;
    if (
      first &&
      last &&
      (blob.location.offset - (last.offset + last.length) > gapBytes ||
        blob.location.offset + blob.location.length - first.offset > rangeBytes)
    ) {
      out.push(current);
      current = [];
    }
    current.push(blob);
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * The tree as it is made, beside the fetching: files in manifest order, each range's opens waiting
 * only for the files its chunks go to. Made first, the tree held every fetch for its whole time: a
 * file's creation costs ~0.2-0.8 ms on an ext4 disk (measured, 1,241 entries took 0.2-1.1 s), while
 * tar makes each file as its bytes come and zstd and the download run meanwhile.
 */
class TreeProgress {
  private failure: { err: unknown } | undefined;
  private readonly waiting: { file: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  /** The files' handles, by their index among the manifest's files, as they are made. */
  constructor(private readonly handles: FileHandle[]) {}

  /** Resolves once file `file` (its index among the manifest's files) is made. */
  made(file: number): Promise<void> {
    if (file < this.handles.length) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure.err);
    return new Promise((resolve, reject) => this.waiting.push({ file, resolve, reject }));
  }

  fileMade(handle: FileHandle): void {
    this.handles.push(handle);
    for (let k = this.waiting.length - 1; k >= 0; k--) {
      const w = this.waiting[k]!;
      if (w.file < this.handles.length) {
        this.waiting.splice(k, 1);
        w.resolve();
      }
    }
  }

  fail(err: unknown): void {
    this.failure ??= { err };
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

/**
 * Of the chunks a journal names, those still whole at every place they were written. A journal
 * names chunks written, not chunks on disk: after a machine lost power, the journal's last records
 * may have been kept and not the bytes they name. So each is read back and hashed before it is
 * trusted; one that is not whole is fetched again (a resume only, at a local read and hash a chunk).
 */
async function stillWritten(
  input: TreeRestoreInput,
  handles: FileHandle[],
  locations: Map<string, ChunkLocation>,
): Promise<Set<string>> {
  const written = new Set(input.written ?? []);
  if (!written.size) return written;
  let buffer = Buffer.alloc(0);
  const files = input.manifest.entries.filter((e) => e.type === 'file');
  for (const [file, entry] of files.entries()) {
    let at = 0;
    for (const id of entry.chunks!) {
      const length = locations.get(id)?.rawLength;
      // One in no pack fails the unpack below, as a fresh one would.
      if (length === undefined || length > maxChunkBytes) break;
      if (written.has(id)) {
        if (buffer.length < length) buffer = Buffer.allocUnsafe(length);
        const bytes = buffer.subarray(0, length);
        if (
          (await readAt(handles[file]!, bytes, at)) !== length ||
          !chunkIdOf(input.dedupKey, bytes).equals(Buffer.from(id, 'hex'))
        )
          written.delete(id);
      }
      at += length;
    }
  }
  return written;
}

export async function restoreTree(input: TreeRestoreInput): Promise<{ files: number; bytes: number }> {
  const { manifest, staging, source } = input;
  const rules = new EntryRules(new Set(manifest.volumes.map((v) => v.name)));
  const paths = manifest.entries.map((e) =>
    rules.check({
      path: e.path,
      type: e.type,
      typeflag: '',
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.size ?? 0,
      mtime: e.mtime,
      linkTarget: e.target ?? '',
      offset: 0,
    }),
  );
  rules.checkLinks();

  const fileEntries = manifest.entries.flatMap((e, k) => (e.type === 'file' ? [k] : []));
  // Asked while the tree is made, which needs no chunk's place: the answer is awaited once it is.
  const locating = source.locate([...new Set(fileEntries.flatMap((k) => manifest.entries[k]!.chunks!))]);
  locating.catch(() => {}); // awaited below; failing first is no crash meanwhile
  const concurrency = input.concurrency ?? 4;
  // The tree, files empty: in manifest order, so every parent exists before its children.
  const handles: FileHandle[] = [];
  // The main thread fetches, each reader into a buffer of its own that the chunk threads share; they
  // open each blob, check its chunk against its id and write it (with the main thread opening blobs,
  // a restore went no faster than it could decrypt and decompress on one core). Started now, so that
  // they load while the tree is made.
  const buffers = Array.from({ length: concurrency }, () => new SharedArrayBuffer(readerBytes));
  const threads = new ChunkThreads(buffers, input.dedupKey);
  const made: { at: string; k: number }[] = [];
  // Resumed, the tree is as the attempt before left it: what it made is taken as it stands (the
  // staging is this agent's alone), a file's bytes already written kept.
  const resume = input.written !== undefined;
  const createFlags =
    constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | (resume ? 0 : constants.O_EXCL);
  const makeDirectory = (at: string) =>
    mkdir(at, { mode: 0o700 }).catch(async (err: NodeJS.ErrnoException) => {
      if (!(resume && err.code === 'EEXIST' && (await lstat(at)).isDirectory())) throw err;
    });
  let entriesDone = 0;
  const progress = new TreeProgress(handles);
  /** Set once the unpack fails: the tree is made no further. */
  let stopped = false;
  const makeTree = async () => {
    for (const [k, e] of manifest.entries.entries()) {
      if (stopped) throw new Error('the unpack stopped');
      const at = join(staging, paths[k]!);
      if (e.type === 'directory') await makeDirectory(at);
      else if (e.type === 'file') {
        progress.fileMade(await open(at, createFlags, 0o600));
      } else if (e.type === 'symlink') {
        if (resume) await rm(at, { force: true });
        await symlink(e.target!, at);
        if (input.asRoot) await lchown(at, e.uid, e.gid);
        await lutimes(at, e.mtime, e.mtime);
        continue;
      } else continue;
      made.push({ at, k });
    }
  };
  const tree = makeTree();
  tree.catch((err: unknown) => progress.fail(err));
  try {
    const locations = await locating;
    const wanted = new Map<string, Wanted>();
    // A resume reads back what the journal names: its files must be open first.
    if (resume) await tree;
    const written = await stillWritten(input, handles, locations);
    // Per file, its chunk writes still to do: at 0, the file is whole.
    const pending = fileEntries.map(() => 0);
    for (const [file, k] of fileEntries.entries()) {
      const entry = manifest.entries[k]!;
      let at = 0;
      for (const id of entry.chunks!) {
        const location = locations.get(id);
        if (!location) throw new FormatV2Error('chunk_missing', `chunk ${id} of ${entry.path} is in no pack`);
        if (!written.has(id)) {
          let w = wanted.get(id);
          if (!w) wanted.set(id, (w = { id, location, targets: [] }));
          w.targets.push({ file, at });
          pending[file]!++;
        }
        at += location.rawLength;
      }
      if (at !== entry.size)
        throw new FormatV2Error(
          'corrupt_framing',
          `the chunks of ${entry.path} make ${at} bytes, not ${entry.size}`,
        );
    }

    const byPack = new Map<string, Wanted[]>();
    for (const w of wanted.values()) {
      const list = byPack.get(w.location.packId) ?? [];
      list.push(w);
      byPack.set(w.location.packId, list);
    }
    source.plan?.([...byPack.keys()]);
    const readers = Math.min(concurrency, byPack.size);
    // Entries whole once the tree is made: all but the files still to write (and the hard links, made last).
    const wholeOnceMade =
      manifest.entries.length -
      pending.filter((n) => n > 0).length -
      manifest.entries.filter((e) => e.type === 'hardlink').length;
    const treeMade = tree.then(async () => {
      entriesDone += wholeOnceMade;
      await input.onWritten?.([], entriesDone);
    });

    const queue = [...byPack.entries()];
    const reader = async (arena: number) => {
      const into = Buffer.from(buffers[arena]!);
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [packId, blobs] = next;
        // A refusal names the copies it found damaged, for the caller to have them checked and marked.
        const damaged = (err: unknown, found: Wanted[]): never => {
          if (err instanceof FormatV2Error) err.copies.push(...found.map((w) => ({ chunkId: w.id, packId })));
          throw err;
        };
        const dataKey = await source.dataKey(packId).catch((err: unknown) => damaged(err, blobs));
        for (const range of ranges(blobs)) {
          const start = range[0]!.location.offset;
          const last = range.at(-1)!.location;
          const length = last.offset + last.length - start;
          input.roomCheck?.();
          if (length > readerBytes)
            throw new FormatV2Error(
              'corrupt_framing',
              `pack ${packId}: a blob is indexed larger than a blob can be`,
            );
          const bytes = await source
            .read(packId, start, last.offset + last.length, into)
            .catch((err: unknown) => damaged(err, range));
          if (bytes.length !== length)
            damaged(
              new FormatV2Error('truncated', `pack ${packId} is shorter than its index says`),
              range.filter((w) => w.location.offset + w.location.length - start > bytes.length),
            );
          // A source that could not read into the buffer: its bytes go there, where the threads read.
          if (bytes.buffer !== buffers[arena] || bytes.byteOffset !== 0) bytes.copy(into);
          let lastFile = 0;
          for (const w of range) for (const t of w.targets) lastFile = Math.max(lastFile, t.file);
          await progress.made(lastFile);
          await Promise.all(
            range.map(async (w) => {
              if (w.location.rawLength > maxChunkBytes)
                throw new FormatV2Error(
                  'corrupt_framing',
                  `chunk ${w.id} is indexed larger than a chunk can be`,
                );
              const targets = w.targets.map((t) => ({ fd: handles[t.file]!.fd, at: t.at }));
              await threads
                .open(
                  arena,
                  w.location.offset - start,
                  w.location.length,
                  dataKey,
                  w.id,
                  w.location.rawLength,
                  targets,
                )
                .catch((err: unknown) => damaged(err, [w]));
              input.roomCheck?.();
            }),
          );
          for (const w of range) for (const t of w.targets) if (--pending[t.file]! === 0) entriesDone++;
          await input.onWritten?.(
            range.map((w) => w.id),
            entriesDone,
          );
        }
      }
    };
    await Promise.all([treeMade, ...Array.from({ length: readers }, (_, arena) => reader(arena))]);
  } finally {
    stopped = true;
    await tree.catch(() => undefined);
    // The threads first: they write through the handles' descriptors, which closing frees for reuse.
    await threads.close();
    await Promise.all(handles.map((h) => h.close()));
  }

  // Hard links once their targets are whole; then owners, modes and times, the deepest first, so a
  // directory's time is not changed again by what is made inside it.
  for (const [k, e] of manifest.entries.entries()) {
    if (e.type !== 'hardlink') continue;
    if (resume) await rm(join(staging, paths[k]!), { force: true });
    await link(join(staging, e.target!), join(staging, paths[k]!));
  }
  for (const { at, k } of made.reverse()) {
    const e = manifest.entries[k]!;
    if (input.asRoot) await chown(at, e.uid, e.gid);
    await chmod(at, e.mode);
    await utimes(at, e.mtime, e.mtime);
  }
  return {
    files: fileEntries.length,
    bytes: fileEntries.reduce((n, k) => n + manifest.entries[k]!.size!, 0),
  };
}

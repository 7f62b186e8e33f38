import { constants } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lutimes,
  lchown,
  mkdir,
  open,
  symlink,
  utimes,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { EntryRules } from '../entry-rules.ts';
import { BlobOpener } from './blob.ts';
import { ChunkRing } from './chunk-ring.ts';
import { ChunkThreads } from './chunk-threads.ts';
import { maxChunkBytes } from './chunker.ts';
import { FormatV2Error } from './errors.ts';
import type { ManifestV2 } from './manifest-v2.ts';

// Unpacking a version-2 snapshot into a staging folder (docs/FORMAT.md, "Version 2"): the entries are
// checked by version 1's rules first (nothing is written for a manifest that names a way out of the
// folder), every file is made empty, then the packs are read once each, by byte ranges holding the
// blobs needed, several at a time, and every chunk is checked and written where each file wants it.
// A chunk shared by many files, or many times in one, is fetched once.

/** Where a chunk lies, as the control plane's index says (checked again when its blob is opened). */
export interface ChunkLocation {
  packId: string;
  offset: number;
  length: number;
  rawLength: number;
}

/** What the restorer reads through: the destination's packs, and each pack's data key. */
export interface PackSource {
  locate(chunkIds: string[]): Promise<Map<string, ChunkLocation>>;
  dataKey(packId: string): Promise<Buffer>;
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
  onProgress?: (p: { bytesFetched: number; bytesWritten: number }) => void;
}

/** Neighbouring blobs are fetched in one request unless this many unneeded bytes lie between them. */
const gapBytes = 256 * 1024;
/** One request's bytes at most (or one blob's, if larger): what a read holds in memory. */
const rangeBytes = 16 * 1024 * 1024;
/**
 * Opened chunks waiting for a thread to check and write them: twice the largest chunk, so that one
 * is opened while another is written, and ~16 of the usual 1 MiB.
 */
const ringBytes = 2 * maxChunkBytes;

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
  const locations = await source.locate([
    ...new Set(fileEntries.flatMap((k) => manifest.entries[k]!.chunks!)),
  ]);
  const wanted = new Map<string, Wanted>();
  for (const [file, k] of fileEntries.entries()) {
    const entry = manifest.entries[k]!;
    let at = 0;
    for (const id of entry.chunks!) {
      const location = locations.get(id);
      if (!location) throw new FormatV2Error('chunk_missing', `chunk ${id} of ${entry.path} is in no pack`);
      let w = wanted.get(id);
      if (!w) wanted.set(id, (w = { id, location, targets: [] }));
      w.targets.push({ file, at });
      at += location.rawLength;
    }
    if (at !== entry.size)
      throw new FormatV2Error(
        'corrupt_framing',
        `the chunks of ${entry.path} make ${at} bytes, not ${entry.size}`,
      );
  }

  // The tree, files empty: in manifest order, so every parent exists before its children.
  const handles: FileHandle[] = [];
  // The main thread fetches and opens the blobs (one opener: open() does not wait); hashing each
  // chunk against its id and writing it, most of the rest of the work, go to the chunk threads,
  // started now so that they load while the tree is made.
  const opener = new BlobOpener();
  const ring = new ChunkRing(ringBytes);
  const threads = new ChunkThreads([ring.memory], input.dedupKey);
  const made: { at: string; k: number }[] = [];
  const createFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  try {
    for (const [k, e] of manifest.entries.entries()) {
      const at = join(staging, paths[k]!);
      if (e.type === 'directory') await mkdir(at, { mode: 0o700 });
      else if (e.type === 'file') handles.push(await open(at, createFlags, 0o600));
      else if (e.type === 'symlink') {
        await symlink(e.target!, at);
        if (input.asRoot) await lchown(at, e.uid, e.gid);
        await lutimes(at, e.mtime, e.mtime);
        continue;
      } else continue;
      made.push({ at, k });
    }

    const byPack = new Map<string, Wanted[]>();
    for (const w of wanted.values()) {
      const list = byPack.get(w.location.packId) ?? [];
      list.push(w);
      byPack.set(w.location.packId, list);
    }
    let bytesFetched = 0;
    let bytesWritten = 0;
    const queue = [...byPack.entries()];
    const worker = async () => {
      // One buffer per reader for all its ranges: a fresh one per range was garbage that the agent's
      // peak memory counted until V8 came to collect it.
      let into = Buffer.allocUnsafe(0);
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [packId, blobs] = next;
        const dataKey = await source.dataKey(packId);
        for (const range of ranges(blobs)) {
          const start = range[0]!.location.offset;
          const last = range.at(-1)!.location;
          if (into.length < last.offset + last.length - start)
            into = Buffer.allocUnsafe(Math.max(rangeBytes, last.offset + last.length - start));
          const bytes = await source.read(packId, start, last.offset + last.length, into);
          if (bytes.length !== last.offset + last.length - start)
            throw new FormatV2Error('truncated', `pack ${packId} is shorter than its index says`);
          bytesFetched += bytes.length;
          const written: Promise<void>[] = [];
          for (const w of range) {
            const blob = bytes.subarray(
              w.location.offset - start,
              w.location.offset - start + w.location.length,
            );
            if (w.location.rawLength > maxChunkBytes)
              throw new FormatV2Error(
                'corrupt_framing',
                `chunk ${w.id} is indexed larger than a chunk can be`,
              );
            const slot = await ring.take(w.location.rawLength);
            let plain: Buffer;
            try {
              plain = opener.open(dataKey, Buffer.from(w.id, 'hex'), blob, slot.view);
            } catch (err) {
              slot.release();
              throw err;
            }
            if (plain.length !== w.location.rawLength) {
              slot.release();
              throw new FormatV2Error('corrupt_framing', `chunk ${w.id} has another size than indexed`);
            }
            const targets = w.targets.map((t) => ({ fd: handles[t.file]!.fd, at: t.at }));
            const done = threads.write(0, slot.at, plain.length, w.id, targets);
            done.then(slot.release, slot.release);
            const checked = done.then((id) => {
              if (id !== w.id)
                throw new FormatV2Error(
                  'chunk_mismatch',
                  `blob ${w.id.slice(0, 16)} holds other content than its id says`,
                );
              bytesWritten += plain.length * targets.length;
            });
            checked.catch(() => {}); // awaited below, but a failure may come while a slot is awaited
            written.push(checked);
          }
          await Promise.all(written);
          input.onProgress?.({ bytesFetched, bytesWritten });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(input.concurrency ?? 4, byPack.size) }, worker));
  } finally {
    // The threads first: they write through the handles' descriptors, which closing frees for reuse.
    await threads.close();
    await Promise.all(handles.map((h) => h.close()));
  }

  // Hard links once their targets are whole; then owners, modes and times, the deepest first, so a
  // directory's time is not changed again by what is made inside it.
  for (const [k, e] of manifest.entries.entries())
    if (e.type === 'hardlink') await link(join(staging, e.target!), join(staging, paths[k]!));
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

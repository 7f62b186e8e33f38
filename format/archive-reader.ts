import { chmodSync, chownSync, utimesSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ContainerOpener } from './container-opener.ts';
import type { KeySource } from './data-key.ts';
import { EntryRules, RefusedEntryError } from './entry-rules.ts';
import type { Manifest, ManifestEntry } from './manifest.ts';
import { TarParser, type EntrySink, type TarHeader } from './tar-parser.ts';
import { zstd } from './zstd-binding.ts';

export interface UnpackOptions {
  /** The data object, as stored: a stream, or any iterable of its bytes. */
  source: AsyncIterable<Buffer>;
  key: KeySource;
  /** Checked against the header before anything is decrypted, so a wrong key is named as such. */
  expectedKeyId?: Buffer;
  manifest: Manifest;
  /** Created by the unpacker; must not exist, unless resuming. Removed again if the archive is refused. */
  staging: string;
  onProgress?: (p: { entries: number; bytes: number }) => void;
  /**
   * Continues an unpack that was interrupted (an agent restart) into the `staging` it left: the
   * archive is read again from its start, every chunk still authenticated, but the first
   * `entriesDone` entries, already written and verified, are not written again.
   */
  resume?: { entriesDone: number };
  /** The count of leading entries written and verified so far, as it grows: what `resume` takes. */
  onCheckpoint?: (entriesDone: number) => void;
  /** Leave staging in place on a failure (a caller that may resume, or discards it itself). */
  keepStagingOnFailure?: boolean;
  /**
   * Check everything (every chunk, every entry against the manifest, every file's SHA-256) and write
   * nothing: `staging` is never created. What verifying a stored snapshot does.
   */
  verifyOnly?: boolean;
}

// Tar buffers in circulation, hence the unpacker's memory whatever the archive's size (24 or 32
// measured no faster; 4 MiB ones no faster either).
const tarBytes = 1024 * 1024;
const tarBuffers = 8;

function mismatch(entry: string, what: string, declared: unknown, found: unknown): RefusedEntryError {
  return new RefusedEntryError(
    entry,
    `${what} differs from the manifest (declared ${declared}, found ${found})`,
  );
}

/** Compares an archive entry with the manifest's entry at the same position. */
function checkAgainstManifest(path: string, h: TarHeader, declared: ManifestEntry | undefined): void {
  if (!declared) throw new RefusedEntryError(path, 'more entries than the manifest declares');
  if (declared.path !== path) throw mismatch(path, 'path', declared.path, path);
  if (declared.type !== h.type) throw mismatch(path, 'type', declared.type, h.type);
  if (declared.mode !== (h.mode & 0o7777))
    throw mismatch(path, 'mode', declared.mode.toString(8), (h.mode & 0o7777).toString(8));
  if (h.type === 'file' && declared.size !== h.size) throw mismatch(path, 'size', declared.size, h.size);
  if (
    (h.type === 'symlink' || h.type === 'hardlink') &&
    declared.target !== h.linkTarget.replace(/\/+$/, '')
  ) {
    throw mismatch(path, 'link target', declared.target, h.linkTarget);
  }
}

/** What the file-system thread is asked to do, in order: see unpack-writer.js. */
type Op = (string | number)[];

/** An error from the file-system thread, as plain data. */
interface WireError {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

function fromWire(e: WireError): Error {
  const err: NodeJS.ErrnoException = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.errno !== undefined) err.errno = e.errno;
  if (e.syscall !== undefined) err.syscall = e.syscall;
  if (e.path !== undefined) err.path = e.path;
  return err;
}

/**
 * container -> decrypt -> zstd -> tar entries -> files under `staging`, checking every chunk, every
 * entry against the rules and the manifest, and every file's SHA-256, in constant memory.
 *
 * Three threads, as one core cannot do it all at the pace of `zstd -d | tar -x` (per GB of tar,
 * measured: zstd 0.8 s, decryption 0.25 s, SHA-256 0.65-0.75 s, write syscalls 0.8-0.9 s): this one
 * decrypts, decompresses, parses and checks every entry, then gives each tar buffer with the list of
 * file-system operations it decided on to a file-system thread (unpack-writer.js) and a hashing
 * thread (hash-worker.js) at once. The buffers are shared memory, never copied.
 * A file's SHA-256 is therefore compared after it is written: the archive is refused all the same,
 * staging and all, and of several failures the one reported is the first in archive order.
 */
export async function unpackArchive(options: UnpackOptions): Promise<{ entries: number; bytes: number }> {
  const { manifest, staging } = options;
  const rules = new EntryRules(new Set(manifest.volumes.map((v) => v.name)));
  const asRoot = process.getuid?.() === 0;
  const directories: { at: string; entry: ManifestEntry }[] = [];
  // Directories already asked for, so an entry whose parent is one needs no mkdir (it was a
  // thread-pool round trip per entry). Nothing can replace them: colliding entries are refused.
  const made = new Set<string>([staging]);
  let index = 0;
  let bytes = 0;
  const skip = options.resume?.entriesDone ?? 0;
  let inFile = false; // the entry being parsed is a file whose end has not been reached

  let failure: { error: Error; entry: number } | undefined;
  let waiting: (() => void)[] = [];
  const wake = () => {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  };
  const changed = () => new Promise<void>((resolve) => waiting.push(resolve));
  /** Records a failure at entry position `entry`; the earliest one is reported. */
  const fail = (error: unknown, entry: number) => {
    if (!failure || entry < failure.entry)
      failure = { error: error instanceof Error ? error : new Error(String(error)), entry };
    wake();
  };

  // The tar buffer being parsed, and the operations decided for it so far.
  let chunk: ArrayBufferLike | undefined;
  let ops: Op[] = [];
  let copies: Buffer[] = [];

  function onEntry(h: TarHeader): EntrySink {
    const path = rules.check(h);
    const declared = manifest.entries[index];
    checkAgainstManifest(path, h, declared);
    const entry = declared!;
    const seq = index++;
    const at = join(staging, path);
    const parent = dirname(at);
    if (seq < skip) return skipped(entry, at, parent);
    if (!made.has(parent)) {
      ops.push(['mkdir', seq, parent]);
      made.add(parent);
    }
    options.onProgress?.({ entries: index, bytes });

    switch (entry.type) {
      case 'directory':
        ops.push(['mkdir', seq, at]);
        made.add(at);
        directories.push({ at, entry }); // modes and times last: adding files would change them
        return {};
      case 'symlink':
        if (skip) ops.push(['unlink', seq, at]);
        ops.push(['symlink', seq, at, entry.target!, entry.uid, entry.gid, entry.mtime]);
        return {};
      case 'hardlink':
        if (skip) ops.push(['unlink', seq, at]);
        ops.push(['link', seq, at, join(staging, entry.target!)]);
        return {};
      case 'file':
        if (skip) ops.push(['unlink', seq, at]);
        ops.push(['open', seq, at]);
        inFile = true;
        return {
          data: (data) => {
            bytes += data.length;
            if (data.buffer === chunk) ops.push(['write', data.byteOffset, data.byteOffset + data.length]);
            else ops.push(['write', -copies.push(Buffer.from(data)), 0]);
          },
          end: () => {
            ops.push(['close', seq, entry.uid, entry.gid, entry.mode, entry.mtime]);
            inFile = false;
          },
        };
    }
  }

  /** An entry a previous attempt wrote and verified: read past, nothing written, hashed or asked of a thread. */
  function skipped(entry: ManifestEntry, at: string, parent: string): EntrySink {
    made.add(parent);
    if (entry.type === 'directory') {
      made.add(at);
      directories.push({ at, entry });
    }
    if (entry.type !== 'file') return {};
    inFile = true;
    return {
      data: (data) => void (bytes += data.length),
      end: () => void (inFile = false),
    };
  }

  const writing = !options.verifyOnly;
  if (!options.resume && writing) await mkdir(staging, { recursive: false, mode: 0o700 });
  // Per tar buffer: how many leading entries are complete once both threads are through with it.
  const completeAfter = new Array<number>(tarBuffers).fill(0);
  // Tar buffers, shared: the file-system and hashing threads work on the same one at the same time.
  const slots = Array.from({ length: tarBuffers }, () => new SharedArrayBuffer(tarBytes));
  const views = slots.map((sab) => Buffer.from(sab));
  const free = views.map((_, i) => i);
  const busy = new Array<number>(tarBuffers).fill(0); // threads still on each slot
  // execArgv: [], or the threads would preload what this process was started with (tsx: 150 ms,
  // 30 MiB each, measured), which plain JavaScript does not need.
  const writer = writing
    ? new Worker(new URL('./unpack-writer.js', import.meta.url), {
        workerData: { slots, asRoot },
        execArgv: [],
      })
    : undefined;
  const hasher = new Worker(new URL('./hash-worker.js', import.meta.url), {
    workerData: { slots },
    execArgv: [],
  });
  const threads = writer ? [writer, hasher] : [hasher];
  let finished = false;
  let threadsAlive = true;
  let syncId = 0;
  const syncs = new Map<number, { pending: number; resolve: () => void }>();
  const threadDied = (err: Error) => {
    if (finished) return;
    threadsAlive = false;
    fail(err, index);
    for (const { resolve } of syncs.values()) resolve();
    syncs.clear();
  };
  /** Resolves once both threads have done everything asked so far; closes a file left open. */
  const settled = () =>
    new Promise<void>((resolve) => {
      if (!threadsAlive) return resolve();
      syncs.set(++syncId, { pending: threads.length, resolve });
      writer?.postMessage({ t: 'sync', id: syncId, last: true });
      hasher.postMessage({ t: 'sync', id: syncId });
    });
  const onSynced = (id: number) => {
    const sync = syncs.get(id);
    if (sync && --sync.pending === 0) {
      syncs.delete(id);
      sync.resolve();
    }
  };
  // Both threads take buffers in the order given, so a buffer released by both means every entry
  // completed up to its end is written and its SHA-256 compared.
  const release = (slot: number) => {
    if (--busy[slot]! === 0) {
      if (!failure) options.onCheckpoint?.(completeAfter[slot]!);
      free.push(slot);
      wake();
    }
  };
  writer?.on(
    'message',
    (
      m:
        | { t: 'done'; slot: number }
        | { t: 'error'; entry: number; error: WireError }
        | { t: 'synced'; id: number },
    ) => {
      if (m.t === 'done') release(m.slot);
      else if (m.t === 'error') fail(fromWire(m.error), m.entry);
      else onSynced(m.id);
    },
  );
  hasher.on(
    'message',
    (m: { t: 'done'; slot: number; digests: (number | string)[] } | { t: 'synced'; id: number }) => {
      if (m.t === 'synced') return onSynced(m.id);
      for (let i = 0; i < m.digests.length; i += 2) {
        const seq = m.digests[i] as number;
        const sha256 = m.digests[i + 1] as string;
        const entry = manifest.entries[seq]!;
        if (sha256 !== entry.sha256) fail(mismatch(entry.path, 'SHA-256', entry.sha256, sha256), seq);
      }
      release(m.slot);
    },
  );
  for (const thread of threads) {
    thread.on('error', threadDied);
    thread.on('exit', () => threadDied(new Error('an unpacking thread stopped unexpectedly')));
  }

  const opener = new ContainerOpener(options.key, options.expectedKeyId, true);
  // zstd's own streaming API, to decompress straight into the shared tar buffers (its stream class
  // allocates a fresh one per output). In this process, no longer a `zstd -d` child: with hashing and
  // writing on threads of their own this thread has the time, and the pipes to and from a child cost
  // CPU (reading 1 GB from a pipe: 0.35 s, measured).
  const dctx = new (zstd().DCtx)();
  const parser = new TarParser(onEntry);
  let slot = -1; // the tar buffer being filled
  let out: Buffer | undefined;
  let outLength = 0;
  let frameOpen = false; // inside a zstd frame: its last call did not return 0

  /** Parses the tar buffer at hand and gives it, with what was decided, to both threads. */
  async function handOver(): Promise<void> {
    const view = out!.subarray(0, outLength);
    const at = slot;
    out = undefined;
    outLength = 0;
    chunk = view.buffer;
    try {
      await parser.feed(view);
    } finally {
      completeAfter[at] = Math.max(skip, index - (inFile ? 1 : 0));
      const message = { slot: at, ops, copies };
      busy[at] = threads.length;
      writer?.postMessage(message);
      hasher.postMessage(message);
      chunk = undefined;
      ops = [];
      copies = [];
    }
  }

  async function decompress(plain: Buffer): Promise<void> {
    let full = false; // zstd filled the output: it may hold more
    while (plain.length > 0 || full) {
      if (!out) {
        while (!failure && free.length === 0) await changed();
        if (failure) return;
        slot = free.pop()!;
        out = views[slot]!;
      }
      let result: [number, number, number];
      try {
        result = dctx.decompressStream(out.subarray(outLength), plain);
      } catch (err) {
        throw new Error(`zstd could not decompress the archive: ${(err as Error).message}`);
      }
      const [ret, produced, consumed] = result;
      outLength += produced;
      plain = plain.subarray(consumed);
      frameOpen = ret !== 0;
      full = outLength === out.length;
      if (full) await handOver();
    }
  }

  async function unpack(): Promise<void> {
    for await (const data of options.source) {
      opener.push(data);
      for (let plain = opener.next(); plain; plain = opener.next()) {
        await decompress(plain);
        if (failure) return; // leaving the loop destroys the source
      }
    }
    opener.end();
    if (frameOpen) throw new Error('zstd could not decompress the archive: the zstd stream is truncated');
    if (outLength > 0) await handOver();
    parser.finish();
  }

  try {
    await unpack().catch((err: unknown) => fail(err, index));
    await settled();
    if (failure) throw failure.error;
    if (index !== manifest.entries.length) {
      throw new RefusedEntryError(
        manifest.entries[index]!.path,
        'declared by the manifest but missing from the archive',
      );
    }
    rules.checkLinks();
    for (const { at, entry } of writing ? directories.reverse() : []) {
      if (asRoot) chownSync(at, entry.uid, entry.gid);
      chmodSync(at, entry.mode);
      utimesSync(at, entry.mtime, entry.mtime);
    }
  } catch (err) {
    finished = true;
    await Promise.all(threads.map((t) => t.terminate()));
    if (!options.keepStagingOnFailure && writing) await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    finished = true;
    await Promise.all(threads.map((t) => t.terminate()));
  }
  return { entries: index, bytes };
}

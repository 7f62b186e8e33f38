import { once } from 'node:events';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { ContainerSealer } from './container-sealer.ts';
import type { ManifestEntry } from './manifest.ts';
import { TarParser, type TarHeader } from './tar-parser.ts';
import { zstd } from './zstd-binding.ts';

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

const specialTypes: Record<string, string> = { '3': 'character device', '4': 'block device', '6': 'FIFO' };

/** Hashing-thread operations for the file data of a tar buffer: see hash-worker.js. */
type HashOp = (string | number)[];

/**
 * Reads every entry of the tar stream it is fed: size and metadata for the manifest, and for each
 * file the operations that let the hashing thread compute its SHA-256 (filled in by setDigest).
 */
class TarObserver {
  readonly entries: ManifestEntry[] = [];
  private readonly parser = new TarParser((h) => this.entry(h));
  /** The buffer being fed, and the hashing operations for it so far. */
  chunk: ArrayBufferLike | undefined;
  ops: HashOp[] = [];
  copies: Buffer[] = [];

  get tarBytes(): number {
    return this.parser.bytes;
  }

  private entry(h: TarHeader) {
    const base = {
      path: h.path.replace(/\/+$/, ''),
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
    };
    if (h.type === 'other') {
      // The restorer refuses such entries, so a snapshot holding one could never be restored: fail now.
      throw new ArchiveError(
        `cannot back up ${base.path}: it is a ${specialTypes[h.typeflag] ?? `tar entry of type ${h.typeflag}`}`,
      );
    }
    if (h.type !== 'file') {
      this.entries.push({ ...base, type: h.type, ...(h.type !== 'directory' && { target: h.linkTarget }) });
      return {};
    }
    const seq = this.entries.push({ ...base, type: 'file', size: h.size, sha256: '' }) - 1;
    this.ops.push(['open', seq]);
    return {
      data: (data: Buffer) => {
        if (data.buffer === this.chunk)
          this.ops.push(['write', data.byteOffset, data.byteOffset + data.length]);
        else this.ops.push(['write', -this.copies.push(Buffer.from(data)), 0]);
      },
      end: () => void this.ops.push(['close', seq]),
    };
  }

  /** Parses a chunk; its hashing operations are then in ops and copies, until the next call. */
  async feed(chunk: Buffer): Promise<void> {
    this.chunk = chunk.buffer;
    this.ops = [];
    this.copies = [];
    await this.parser.feed(chunk);
  }

  setDigest(seq: number, sha256: string): void {
    this.entries[seq]!.sha256 = sha256;
  }

  finish(): void {
    this.parser.finish();
  }
}

// Tar buffers shared by the tar-reading thread, this one and the hashing thread, hence the
// writer's memory (with zstd's) whatever the archive's size. 8 MiB lets tar run ahead while this
// thread waits for zstd's workers; 12 or 16 measured no faster, only bigger.
const slotBytes = 1024 * 1024;
const slotCount = 8;

export interface WriteArchiveOptions {
  /** The folder holding the volume folders; or, per volume, the folder holding that one (a snapshot's, the live one's). */
  root: string | ((volume: string) => string);
  volumes: string[];
  publicKey: Buffer;
  dataKey: Buffer;
  sink: Writable;
  /** zstd level; 3 is zstd's default and the benchmark's baseline. */
  level?: number;
  /** Called once tar has read everything: a frozen environment can be thawed from then on. */
  onSourceRead?: () => void;
}

/**
 * directory -> GNU tar (pax) -> entry hashes -> zstd -> secretstream -> sink, in constant memory.
 * GNU tar does the file system walk because it archives at ~1 GB/s where tar in JavaScript manages a third.
 *
 * Threads, as two cores are short of CPU for it all (per GB, measured: zstd level 3 2.4 s, SHA-256
 * 0.6 s, tar 0.6 s, reading tar's pipe 0.35 s, encryption 0.25 s): tar runs from a thread of its
 * own (tar-reader.js) that gathers its output into shared 1 MiB buffers; this thread parses them,
 * feeds zstd's workers and seals what they produce into the sink; a hashing thread
 * (hash-worker.js) hashes every file from the same buffers meanwhile. No stream objects in between:
 * each hop of a stream pipeline per pipe read (~25,000 per GB) cost CPU too.
 */
export async function writeArchive(
  options: WriteArchiveOptions,
): Promise<{ entries: ManifestEntry[]; tarBytes: number }> {
  const rootOf = typeof options.root === 'string' ? () => options.root as string : options.root;
  // Each name follows its own -C, so no `--` can end the options: a name must not look like one.
  const optionLike = options.volumes.find((v) => v.startsWith('-'));
  if (optionLike !== undefined) throw new ArchiveError(`refused volume name ${JSON.stringify(optionLike)}`);
  const tarArgs = [
    '--format=pax',
    '--pax-option=delete=atime,delete=ctime',
    '--numeric-owner',
    '--sort=name',
    '-cf',
    '-',
    // Absolute: a relative -C would be taken from the previous one.
    ...options.volumes.flatMap((volume) => ['-C', resolve(rootOf(volume)), volume]),
  ];
  const observer = new TarObserver();
  const sink = options.sink;
  let failure: Error | undefined;
  let waiting: (() => void) | undefined;
  const wake = () => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  const fail = (err: Error) => {
    failure ??= err;
    wake();
  };
  sink.on('error', fail);
  let drained: Promise<unknown> | undefined;
  const sealer = new ContainerSealer(
    { publicKey: options.publicKey, dataKey: options.dataKey, compression: 'zstd' },
    (bytes) => {
      if (!sink.write(bytes, () => sealer.recycle(bytes))) drained ??= once(sink, 'drain');
    },
  );
  // zstd's own streaming API, to compress straight into the chunk being sealed (its stream class
  // allocates a fresh buffer per output, then the sealer copied it).
  const { CCtx, CParameter, EndDirective } = zstd();
  const cctx = new CCtx();
  cctx.setParameter(CParameter.compressionLevel, options.level ?? 3);
  // Small jobs, and one worker more than the benchmark machine's 2 cores. Measured on its 1 GiB:
  // - 1 MiB jobs rather than the default 8 MiB for level 3 (4 x its 2 MiB window): the workers'
  //   CPU 2.4 s instead of 2.75 s (a job's data and match tables stay in the core's cache), 45 MiB
  //   less peak RSS (zstd buffers several jobs), for 0.5% more compressed bytes (still 0.5% fewer
  //   than `zstd -3 -T0`);
  // - but with 2 workers so small a queue of jobs ran dry whenever this thread was descheduled:
  //   3.6 s; 3 workers (more jobs in flight) 3.4 s, 4 no better; 2 MiB jobs with 2 workers 3.2 s,
  //   but 185-197 MiB peak RSS, too close to the 200 MiB budget (3 workers, 1 MiB: 170-175).
  cctx.setParameter(CParameter.nbWorkers, 3);
  cctx.setParameter(CParameter.jobSize, 1024 * 1024);
  const compress = (input: Buffer, directive: number) => {
    for (;;) {
      const [ret, produced, consumed] = cctx.compressStream2(sealer.space(), input, directive);
      sealer.commit(produced);
      input = input.subarray(consumed);
      if (input.length === 0 && (directive === EndDirective.continue || ret === 0)) return;
    }
  };

  const slots = Array.from({ length: slotCount }, () => new SharedArrayBuffer(slotBytes));
  const views = slots.map((sab) => Buffer.from(sab));
  // execArgv: [], or the threads would preload what this process was started with (tsx: 150 ms and
  // 30 MiB each, measured), which plain JavaScript does not need.
  // A small heap limit for the tar reader, which is also what makes V8 collect it often: each read of
  // tar's pipe is a fresh 64 KiB buffer outside its heap, and under the default limits ~64 MiB of
  // dead ones piled up before a collection, in a malloc arena glibc then kept after the backup.
  // Measured (a thread reading 1 GiB from a pipe): peak RSS 130 MiB and 125 after, 73 and 70 with it.
  const reader = new Worker(new URL('./tar-reader.js', import.meta.url), {
    workerData: { slots, args: tarArgs },
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: 16 },
  });
  const hasher = new Worker(new URL('./hash-worker.js', import.meta.url), {
    workerData: { slots },
    execArgv: [],
  });
  const filled: { slot: number; length: number }[] = [];
  let reaped = false;
  let tarGone: (() => void) | undefined;
  let tarEnded = false;
  let exit: { code: number | null; stderr: string } | undefined;
  let synced: (() => void) | undefined;
  let ended = false;
  reader.on(
    'message',
    (
      m:
        | { t: 'reaped' }
        | { t: 'data'; slot: number; length: number }
        | { t: 'end' }
        | { t: 'exit'; code: number | null; stderr: string }
        | { t: 'error'; message: string },
    ) => {
      if (m.t === 'reaped') {
        reaped = true;
        tarGone?.();
      } else if (m.t === 'data') filled.push(m);
      else if (m.t === 'end') tarEnded = true;
      else if (m.t === 'exit') {
        exit = m;
        options.onSourceRead?.();
      } else fail(new ArchiveError(m.message));
      wake();
    },
  );
  hasher.on('message', (m: { t: 'done'; slot: number; digests: (number | string)[] } | { t: 'synced' }) => {
    if (m.t === 'synced') return synced?.();
    for (let i = 0; i < m.digests.length; i += 2)
      observer.setDigest(m.digests[i] as number, m.digests[i + 1] as string);
    reader.postMessage({ t: 'free', slot: m.slot }); // parsed, compressed and hashed: fill it again
  });
  for (const thread of [reader, hasher]) {
    const gone = (err: Error) => {
      if (thread === reader) reaped = true; // nothing left to wait for
      if (ended) return;
      fail(err);
      synced?.();
      tarGone?.();
    };
    thread.on('error', gone);
    thread.on('exit', () => gone(new Error('a thread of the archive writer stopped unexpectedly')));
  }
  const changed = () => new Promise<void>((resolve) => (waiting = resolve));

  try {
    for (;;) {
      while (!failure && !filled.length && !tarEnded) await changed();
      if (failure) throw failure;
      const next = filled.shift();
      if (!next) break;
      const view = views[next.slot]!.subarray(0, next.length);
      await observer.feed(view);
      hasher.postMessage({ slot: next.slot, ops: observer.ops, copies: observer.copies });
      // zstd copies its input: from here on only the hashing thread reads this buffer.
      compress(view, EndDirective.continue);
      if (drained) {
        await drained;
        drained = undefined;
      }
    }
    observer.finish();
    compress(Buffer.alloc(0), EndDirective.end);
    sealer.end();
    sink.end();
    await finished(sink);
    // Every digest in (a thread that died has set failure, and will never answer).
    if (!failure)
      await new Promise<void>((resolve) => {
        synced = resolve;
        hasher.postMessage({ t: 'sync' });
      });
    while (!failure && !exit) await changed();
    if (failure) throw failure;
    sink.off('error', fail);
  } catch (err) {
    if (!reaped) {
      // Killed and waited for by the thread that started it, or it would linger as a zombie.
      await new Promise<void>((resolve) => {
        tarGone = resolve;
        reader.postMessage({ t: 'kill' });
      });
    }
    // As pipeline() did; the listener above stays, to take the 'error' event destroy(err) emits.
    sink.destroy(err as Error);
    throw err;
  } finally {
    ended = true;
    await Promise.all([reader.terminate(), hasher.terminate()]);
  }
  const { code, stderr } = exit!;
  // Exit 1 is "some files changed while being read", expected on a live volume; anything else is fatal.
  if (code !== 0 && code !== 1) throw new ArchiveError(`tar failed with exit code ${code}: ${stderr.trim()}`);
  return { entries: observer.entries, tarBytes: observer.tarBytes };
}

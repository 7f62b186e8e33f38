import { Worker } from 'node:worker_threads';
import { mismatch } from './manifest-check.ts';
import type { Manifest } from './manifest.ts';
import type { Batch } from './unpack-plan.ts';

// Tar buffers in circulation, hence the unpacker's memory whatever the archive's size (24 or 32
// measured no faster; 4 MiB ones no faster either).
const tarBytes = 1024 * 1024;
const tarBuffers = 8;

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

export interface UnpackThreadsOptions {
  /** False when only verifying: no file-system thread. */
  writing: boolean;
  asRoot: boolean;
  manifest: Manifest;
  onCheckpoint?: (entriesDone: number) => void;
  /** Awaited before each buffer is handed out: see UnpackOptions.roomCheck. */
  roomCheck?: () => Promise<void>;
  /** The entry being read, where a thread that dies is reported. */
  position: () => number;
}

/**
 * The writing stage of unpackArchive: the file-system thread (unpack-writer.js) and the hashing
 * thread (hash-worker.js), the shared tar buffers both work on at the same time, never copied, and
 * the first failure of any thread, this one included, in archive order.
 */
export class UnpackThreads {
  // Tar buffers, shared: the file-system and hashing threads work on the same one at the same time.
  readonly views: Buffer[];
  private readonly free: number[];
  private readonly busy = new Array<number>(tarBuffers).fill(0); // threads still on each slot
  // Per tar buffer: how many leading entries are complete once both threads are through with it.
  private readonly completeAfter = new Array<number>(tarBuffers).fill(0);
  private readonly writer: Worker | undefined;
  private readonly hasher: Worker;
  private readonly threads: Worker[];
  private stopped = false;
  private alive = true;
  private syncId = 0;
  private readonly syncs = new Map<number, { pending: number; resolve: () => void }>();
  private failure: { error: Error; entry: number } | undefined;
  private waiting: (() => void)[] = [];

  constructor(private readonly options: UnpackThreadsOptions) {
    const slots = Array.from({ length: tarBuffers }, () => new SharedArrayBuffer(tarBytes));
    this.views = slots.map((sab) => Buffer.from(sab));
    this.free = this.views.map((_, i) => i);
    // execArgv: [], or the threads would preload what this process was started with (tsx: 150 ms,
    // 30 MiB each, measured), which plain JavaScript does not need.
    this.writer = options.writing
      ? new Worker(new URL('./unpack-writer.js', import.meta.url), {
          workerData: { slots, asRoot: options.asRoot },
          execArgv: [],
        })
      : undefined;
    this.hasher = new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: { slots },
      execArgv: [],
    });
    this.threads = this.writer ? [this.writer, this.hasher] : [this.hasher];
    this.writer?.on(
      'message',
      (
        m:
          | { t: 'done'; slot: number }
          | { t: 'error'; entry: number; error: WireError }
          | { t: 'synced'; id: number },
      ) => {
        if (m.t === 'done') this.release(m.slot);
        else if (m.t === 'error') this.fail(fromWire(m.error), m.entry);
        else this.onSynced(m.id);
      },
    );
    this.hasher.on(
      'message',
      (m: { t: 'done'; slot: number; digests: (number | string)[] } | { t: 'synced'; id: number }) => {
        if (m.t === 'synced') return this.onSynced(m.id);
        for (let i = 0; i < m.digests.length; i += 2) {
          const seq = m.digests[i] as number;
          const sha256 = m.digests[i + 1] as string;
          const entry = options.manifest.entries[seq]!;
          if (sha256 !== entry.sha256) this.fail(mismatch(entry.path, 'SHA-256', entry.sha256, sha256), seq);
        }
        this.release(m.slot);
      },
    );
    for (const thread of this.threads) {
      thread.on('error', (err: Error) => this.died(err));
      thread.on('exit', () => this.died(new Error('an unpacking thread stopped unexpectedly')));
    }
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Records a failure at entry position `entry`; the earliest one is reported. */
  fail(error: unknown, entry: number): void {
    if (!this.failure || entry < this.failure.entry)
      this.failure = { error: error instanceof Error ? error : new Error(String(error)), entry };
    this.wake();
  }

  throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }

  /** A free tar buffer's slot, once there is one, or undefined once the unpack has failed. */
  async acquire(): Promise<number | undefined> {
    if (this.writer) await this.options.roomCheck?.();
    while (!this.failure && this.free.length === 0) await this.changed();
    return this.failure ? undefined : this.free.pop()!;
  }

  /** Gives a filled tar buffer, with what was decided on it, to both threads. */
  handOver(slot: number, batch: Batch): void {
    this.completeAfter[slot] = batch.complete;
    const message = { slot, ops: batch.ops, copies: batch.copies };
    this.busy[slot] = this.threads.length;
    this.writer?.postMessage(message);
    this.hasher.postMessage(message);
  }

  /** Resolves once both threads have done everything asked so far; closes a file left open. */
  settled(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (!this.alive) return resolve();
      this.syncs.set(++this.syncId, { pending: this.threads.length, resolve });
      this.writer?.postMessage({ t: 'sync', id: this.syncId, last: true });
      this.hasher.postMessage({ t: 'sync', id: this.syncId });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const resolve of w) resolve();
  }

  private changed(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  // Both threads take buffers in the order given, so a buffer released by both means every entry
  // completed up to its end is written and its SHA-256 compared.
  private release(slot: number): void {
    if (--this.busy[slot]! === 0) {
      if (!this.failure) this.options.onCheckpoint?.(this.completeAfter[slot]!);
      this.free.push(slot);
      this.wake();
    }
  }

  private onSynced(id: number): void {
    const sync = this.syncs.get(id);
    if (sync && --sync.pending === 0) {
      this.syncs.delete(id);
      sync.resolve();
    }
  }

  private died(err: Error): void {
    if (this.stopped) return;
    this.alive = false;
    this.fail(err, this.options.position());
    for (const { resolve } of this.syncs.values()) resolve();
    this.syncs.clear();
  }
}

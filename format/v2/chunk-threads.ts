import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { chunkZstdLevel } from './blob.ts';
import { maxChunkBytes } from './chunker.ts';
import { FormatV2Error, type FormatV2ErrorKind } from './errors.ts';

type Reply =
  | { job: number; id: string }
  | { job: number; size: number }
  | { job: number; refused: { kind: FormatV2ErrorKind; message: string } }
  | { job: number; error: { message: string; code?: string } };

/**
 * The capture's hashing and zstd on threads of their own (chunk-worker.js), reading chunks straight
 * from the capture's shared batch buffers: the two are most of a first backup's work, and on the
 * main thread they left the other cores idle. A restore's opening, hashing and writing, likewise.
 */
export class ChunkThreads {
  private readonly threads: Worker[];
  private readonly exited: Promise<void>[] = [];
  private readonly jobs = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextJob = 0;
  private failure: Error | undefined;
  /** Set once closing: the threads write nothing more of what they still hold (a failed restore). */
  private readonly stopped = new Int32Array(new SharedArrayBuffer(4));

  constructor(arenas: SharedArrayBuffer[], dedupKey: Buffer, level = chunkZstdLevel) {
    // Two at most: hashing and zstd are some 60% of the work, so with the main thread they keep three
    // cores busy; more would cost the agent ~10-20 MiB each (a V8 heap, a zstd context, a scratch
    // buffer as large as a chunk) for little.
    this.threads = Array.from({ length: Math.min(availableParallelism(), 2) }, () => {
      // execArgv: [], or the threads would preload what this process was started with (tsx).
      const thread = new Worker(new URL('./chunk-worker.js', import.meta.url), {
        workerData: { arenas, dedupKey, level, maxChunkBytes, stopped: this.stopped },
        execArgv: [],
      });
      thread.on('message', (reply: Reply) => {
        const waiting = this.jobs.get(reply.job);
        this.jobs.delete(reply.job);
        if ('error' in reply) waiting?.reject(Object.assign(new Error(reply.error.message), reply.error));
        else if ('refused' in reply)
          waiting?.reject(new FormatV2Error(reply.refused.kind, reply.refused.message));
        else waiting?.resolve(reply);
      });
      thread.on('error', (err: Error) => this.fail(err));
      this.exited.push(new Promise((resolve) => thread.once('exit', () => resolve())));
      thread.on('exit', () => this.fail(new Error('a chunk thread stopped unexpectedly')));
      return thread;
    });
  }

  /** The chunk id (hex) of arenas[arena][offset, offset + length). */
  async hash(arena: number, offset: number, length: number): Promise<string> {
    return ((await this.run({ t: 'hash', arena, offset, length })) as { id: string }).id;
  }

  /**
   * Compresses arenas[arena][offset, offset + length) with zstd in place, once it is hashed: answers
   * the size of the frame now at offset, or 0 if zstd does not shrink the chunk (left as it was).
   */
  async compress(arena: number, offset: number, length: number): Promise<number> {
    return ((await this.run({ t: 'compress', arena, offset, length })) as { size: number }).size;
  }

  /**
   * Seals the chunk at arenas[arena][offset, offset + length), its zstd frame's `size` bytes at the
   * start of that place (0: the chunk raw), as the blob of chunk `id` (hex) under the pack's data
   * `key`, at arenas[out.arena][out.at]: answers the blob's length (blobOverhead more than its payload).
   * The byte before the place (offset - 1) must be free: the encoding byte is written there, so the
   * message is sealed where it lies, not copied.
   */
  async seal(
    arena: number,
    offset: number,
    length: number,
    size: number,
    key: Buffer,
    id: string,
    out: { arena: number; at: number },
  ): Promise<number> {
    return ((await this.run({ t: 'seal', arena, offset, length, size, key, id, out })) as { size: number })
      .size;
  }

  /**
   * Opens the blob at arenas[arena][offset, offset + length) with its pack's data `key` as chunk `id`
   * (hex) of `rawLength` bytes, checks the chunk against the id and writes it at every target (file
   * descriptors of this process). Rejects with a FormatV2Error for a blob that is not that chunk, as
   * BlobOpener would, or with the error of a write.
   */
  async open(
    arena: number,
    offset: number,
    length: number,
    key: Buffer,
    id: string,
    rawLength: number,
    targets: { fd: number; at: number }[],
  ): Promise<void> {
    await this.run({ t: 'open', arena, offset, length, key, id, rawLength, targets });
  }

  /**
   * Asked to stop, not terminated: terminating a thread still loading an addon aborts the whole
   * process (seen with a capture shorter than a thread's start).
   */
  async close(): Promise<void> {
    this.failure ??= new Error('the threads were closed');
    Atomics.store(this.stopped, 0, 1);
    for (const thread of this.threads) thread.postMessage('close');
    await Promise.all(this.exited);
  }

  private run(message: {
    t: string;
    arena: number;
    offset: number;
    length: number;
    [more: string]: unknown;
  }): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      // A data key goes as a copy of its own: cloned, a view into a pooled Buffer takes the whole
      // slab with it. The message's clone is the thread's to wipe once the job is done; this one now.
      const key = message.key instanceof Uint8Array ? Uint8Array.from(message.key) : undefined;
      this.threads[job % this.threads.length]!.postMessage({ ...message, ...(key && { key }), job });
      key?.fill(0);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const { reject } of this.jobs.values()) reject(this.failure);
    this.jobs.clear();
  }
}

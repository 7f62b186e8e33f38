import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * zstd for the capture on threads of its own (compress-worker.js), reading chunks straight from the
 * capture's shared batch buffers: compressing is most of a first backup's work, and on the main
 * thread it left the other cores idle while it waited for it.
 */
export class ChunkCompressor {
  private readonly threads: Worker[];
  private readonly exited: Promise<void>[] = [];
  private readonly jobs = new Map<
    number,
    { resolve: (f: Buffer | null) => void; reject: (e: Error) => void }
  >();
  private nextJob = 0;
  private failure: Error | undefined;

  constructor(arenas: SharedArrayBuffer[], level = 3) {
    // One thread per core, the main thread's hashing and sealing sharing them.
    this.threads = Array.from({ length: Math.min(availableParallelism(), 4) }, () => {
      // execArgv: [], or the threads would preload what this process was started with (tsx).
      const thread = new Worker(new URL('./compress-worker.js', import.meta.url), {
        workerData: { arenas, level },
        execArgv: [],
      });
      thread.on('message', ({ job, frame }: { job: number; frame: Uint8Array | null }) => {
        const waiting = this.jobs.get(job);
        this.jobs.delete(job);
        waiting?.resolve(frame && Buffer.from(frame.buffer, frame.byteOffset, frame.length));
      });
      thread.on('error', (err: Error) => this.fail(err));
      this.exited.push(new Promise((resolve) => thread.once('exit', () => resolve())));
      thread.on('exit', () =>
        this.fail(new Error('a compressing thread of the capture stopped unexpectedly')),
      );
      return thread;
    });
  }

  /** The zstd frame of arenas[arena][offset, offset + length), or null if zstd does not shrink it. */
  compress(arena: number, offset: number, length: number): Promise<Buffer | null> {
    if (this.failure) return Promise.reject(this.failure);
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      this.threads[job % this.threads.length]!.postMessage({ job, arena, offset, length });
    });
  }

  /**
   * Asked to stop, not terminated: terminating a thread still loading zstd's addon aborts the whole
   * process (seen with a capture shorter than a thread's start).
   */
  async close(): Promise<void> {
    this.failure ??= new Error('the capture is over');
    for (const thread of this.threads) thread.postMessage('close');
    await Promise.all(this.exited);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const { reject } of this.jobs.values()) reject(this.failure);
    this.jobs.clear();
  }
}

// Memory shared with the chunk threads (chunk-threads.ts) and handed out in turn: what a restore
// opens a chunk into while a thread checks and writes it, so that no chunk needs a buffer of its
// own (a fresh buffer per chunk had the kernel hand out and zero new pages, and fed the GC).

interface Held {
  start: number;
  end: number;
  freed: Promise<void>;
}

export class ChunkRing {
  readonly memory: SharedArrayBuffer;
  private readonly view: Buffer;
  private head = 0;
  private readonly held = new Set<Held>();

  constructor(bytes: number) {
    this.memory = new SharedArrayBuffer(bytes);
    this.view = Buffer.from(this.memory);
  }

  /** `length` bytes no one else holds, once there are, until release() is called. */
  async take(length: number): Promise<{ at: number; view: Buffer; release: () => void }> {
    if (length > this.view.length) throw new RangeError('ChunkRing: more than it holds');
    for (;;) {
      const start = this.head + length <= this.view.length ? this.head : 0;
      const busy = [...this.held].filter((h) => h.start < start + length && start < h.end);
      if (busy.length) {
        await Promise.race(busy.map((h) => h.freed));
        continue;
      }
      this.head = start + length;
      let release!: () => void;
      const held: Held = {
        start,
        end: start + length,
        freed: new Promise((resolve) => (release = resolve)),
      };
      this.held.add(held);
      void held.freed.then(() => this.held.delete(held));
      return { at: start, view: this.view.subarray(start, start + length), release };
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A bandwidth cap shared by every stream it paces: an agent must not take a customer server's whole
 * link (the same idea as restic's --limit-upload and --limit-download). Each chunk waits until the
 * bytes before it, across all streams, have had their time at the set rate.
 */
export class RateLimit {
  private freeAt = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Books a chunk's time at the rate: how many milliseconds it must wait for its turn. */
  private book(bytes: number): number {
    const now = Date.now();
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes * 1000) / this.bytesPerSecond;
    return start - now;
  }

  /** Resolves when `bytes` more may go. */
  async wait(bytes: number): Promise<void> {
    const wait = this.book(bytes);
    if (wait > 0) await sleep(wait);
  }

  /** `source`'s chunks, each when its turn comes. */
  async *paced(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      await this.wait(chunk.length);
      yield chunk;
    }
  }
}

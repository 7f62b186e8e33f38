import { Transform } from 'node:stream';

/**
 * A bandwidth cap shared by every stream it makes: an agent must not take a customer server's whole
 * uplink (the same idea as restic's --limit-upload). Each chunk waits until the bytes before it,
 * across all streams, have had their time at the set rate.
 */
export class RateLimit {
  private freeAt = 0;

  constructor(private readonly bytesPerSecond: number) {}

  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        const now = Date.now();
        const start = Math.max(now, this.freeAt);
        this.freeAt = start + (chunk.length * 1000) / this.bytesPerSecond;
        if (start === now) done(null, chunk);
        else setTimeout(() => done(null, chunk), start - now);
      },
    });
  }
}

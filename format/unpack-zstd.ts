import type { UnpackThreads } from './unpack-threads.ts';
import { zstd } from './zstd-binding.ts';

/**
 * The decompression stage of unpackArchive: zstd's own streaming API, to decompress straight into
 * the threads' shared tar buffers (its stream class allocates a fresh one per output). In this
 * process, no longer a `zstd -d` child: with hashing and writing on threads of their own this thread
 * has the time, and the pipes to and from a child cost CPU (reading 1 GB from a pipe: 0.35 s, measured).
 */
export class UnpackZstd {
  private readonly dctx = new (zstd().DCtx)();
  private slot = -1; // the tar buffer being filled
  private out: Buffer | undefined;
  private outLength = 0;
  private frameOpen = false; // inside a zstd frame: its last call did not return 0

  /** @param filled takes each tar buffer once filled, with its slot, before the next is filled */
  constructor(
    private readonly threads: UnpackThreads,
    private readonly filled: (tar: Buffer, slot: number) => Promise<void>,
  ) {}

  /** Decompresses a plaintext chunk; returns early once the unpack has failed. */
  async push(plain: Buffer): Promise<void> {
    let full = false; // zstd filled the output: it may hold more
    while (plain.length > 0 || full) {
      if (!this.out) {
        const slot = await this.threads.acquire();
        if (slot === undefined) return;
        this.slot = slot;
        this.out = this.threads.views[slot]!;
      }
      let result: [number, number, number];
      try {
        result = this.dctx.decompressStream(this.out.subarray(this.outLength), plain);
      } catch (err) {
        throw new Error(`zstd could not decompress the archive: ${(err as Error).message}`);
      }
      const [ret, produced, consumed] = result;
      this.outLength += produced;
      plain = plain.subarray(consumed);
      this.frameOpen = ret !== 0;
      full = this.outLength === this.out.length;
      if (full) await this.handOver();
    }
  }

  /** At the end of the plaintext: the last tar buffer, partly filled, unless the zstd stream is cut short. */
  async end(): Promise<void> {
    if (this.frameOpen)
      throw new Error('zstd could not decompress the archive: the zstd stream is truncated');
    if (this.outLength > 0) await this.handOver();
  }

  private async handOver(): Promise<void> {
    const tar = this.out!.subarray(0, this.outLength);
    this.out = undefined;
    this.outLength = 0;
    await this.filled(tar, this.slot);
  }
}

import { maxPackBlobs } from '../../common/pack-upload-limits.ts';
import { ChunkThreads } from './chunk-threads.ts';
import { packTargetBytes } from './pack-layout.ts';
import { PackWriter } from './pack-writer.ts';
import type { ChunkStore } from './tree-writer.ts';

// The packing half of a capture, run beside the reading half: while the tree writer reads and cuts
// the chunks of one batch (hashed on threads of their own as they come), the batch before it is
// asked about, compressed on the same threads and sealed into packs. One batch at a time each way,
// so the chunks held stay bounded.

/** Ids asked about at once: one request to the control plane per batch. */
export const askBatch = 1000;
/**
 * A batch's chunks, held while the destination is asked about them and until they are packed: in
 * one of two shared buffers, in turn, which the hashing and compressing threads read without a
 * copy. Two of 16 MiB hold what one batch of 32 MiB held before the packing ran beside the reading.
 */
const arenaBytes = 16 * 1024 * 1024;

interface Pending {
  id: Promise<string>;
  offset: number;
  length: number;
}

/** Fills packs with the chunks the destination lacks, asking about them in batches. */
export class ChunkPacker {
  /** Chunks held, or hashed in this packer: never asked about or packed twice. */
  readonly known = new Set<string>();
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private readonly arenas = [new SharedArrayBuffer(arenaBytes), new SharedArrayBuffer(arenaBytes)];
  private readonly views = this.arenas.map((a) => Buffer.from(a));
  /** The arena the pending chunks are in. */
  private arena = 0;
  /** Started with the first chunk: a capture of unchanged files needs none. */
  private threads: ChunkThreads | undefined;
  /** The last batch handed on, packed once the one before it is; rejects with the first failure. */
  private packing: Promise<void> = Promise.resolve();
  private pack: { writer: PackWriter; size: number } | undefined;
  /**
   * The pack being filled, in one buffer for the whole capture (the store is done with a pack's bytes
   * once it has taken it): a fresh buffer per blob, the kernel handing out and zeroing new pages,
   * cost the main thread more than sealing the blob.
   */
  private packBytes = Buffer.allocUnsafe(0);
  readonly figures = { chunksStored: 0, bytesStored: 0, packs: 0, packedBytes: 0 };

  constructor(
    private readonly store: ChunkStore,
    private readonly publicKey: Buffer,
    private readonly dedupKey: Buffer,
  ) {}

  /**
   * Takes a chunk (copied: the view is the chunker's); answers its id, to come once a thread has
   * hashed it (wrapped, or awaiting the answer would wait for the hash).
   */
  async add(plain: Buffer): Promise<{ id: Promise<string> }> {
    if (this.pending.length >= askBatch || this.pendingBytes + plain.length > arenaBytes) await this.flush();
    this.threads ??= new ChunkThreads(this.arenas, this.dedupKey);
    const offset = this.pendingBytes;
    this.views[this.arena]!.set(plain, offset);
    const id = this.threads.hash(this.arena, offset, plain.length);
    id.catch(() => {}); // awaited by the batch's flush, which fails first
    this.pending.push({ id, offset, length: plain.length });
    this.pendingBytes += plain.length;
    return { id };
  }

  /**
   * Hands the pending chunks on: once hashed, those not known asked about, and those needed sent to
   * the threads to compress as soon as the answer comes, then sealed and packed after the batch
   * before them, which this waits for (its arena is the one the next chunks go to). So one batch
   * fills while another is packed, and neither the question's round trip nor a batch's end leaves
   * the threads idle.
   */
  async flush(): Promise<void> {
    const batch = this.pending;
    const arena = this.arena;
    this.pending = [];
    this.pendingBytes = 0;
    const previous = this.packing;
    if (batch.length) {
      this.arena ^= 1;
      const compressing = Promise.all(batch.map((p) => p.id)).then(async (ids) => {
        const fresh: { id: string; offset: number; length: number }[] = [];
        for (const [i, id] of ids.entries()) {
          if (this.known.has(id)) continue;
          this.known.add(id);
          fresh.push({ ...batch[i]!, id });
        }
        const needed = fresh.length ? await this.store.needed(fresh.map((p) => p.id)) : new Set();
        return fresh
          .filter((p) => needed.has(p.id))
          .map(({ id, offset, length }) => {
            const frame = this.threads!.compress(arena, offset, length);
            frame.catch(() => {}); // awaited in order by packBatch, unless packing failed first
            return { id, place: this.views[arena]!.subarray(offset, offset + length), frame };
          });
      });
      this.packing = previous.then(async () => this.packBatch(await compressing));
      // Each is awaited later (the packing by the next flush or finish); failing before then is no crash.
      compressing.catch(() => {});
      this.packing.catch(() => {});
    }
    await previous;
  }

  /** Every chunk handed over packed, and the last pack stored. */
  async finish(): Promise<void> {
    await this.flush();
    await this.packing;
    await this.storePack();
  }

  /** Stops the threads, whether the capture finished or failed. */
  async close(): Promise<void> {
    await this.threads?.close();
  }

  /** Sealed in order: a pack's entries follow the files. */
  private async packBatch(chunks: { id: string; place: Buffer; frame: Promise<number> }[]) {
    for (const { id, place, frame } of chunks) {
      // The place holds the chunk's zstd frame from its start now, or the chunk itself if size is 0.
      const size = await frame;
      await this.packChunk(id, place, size ? place.subarray(0, size) : null);
    }
  }

  /** `place`: as long as the chunk, and the chunk itself where frame is null (else overwritten by it). */
  private async packChunk(id: string, place: Buffer, frame: Buffer | null): Promise<void> {
    if (!this.pack) {
      const pack = { size: 0 } as { writer: PackWriter; size: number };
      // The writer's bytes are valid until its next add: copied as they come.
      pack.writer = new PackWriter(this.publicKey, (b) => (pack.size = this.append(b, pack.size)));
      this.pack = pack;
    }
    this.pack.writer.add(Buffer.from(id, 'hex'), place, frame);
    this.figures.chunksStored++;
    this.figures.bytesStored += place.length;
    if (this.pack.writer.bytes >= packTargetBytes || this.pack.writer.count >= maxPackBlobs)
      await this.storePack();
  }

  private async storePack(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    const entries = pack.writer.finish();
    this.figures.packs++;
    this.figures.packedBytes += pack.writer.bytes;
    const bytes = [this.packBytes.subarray(0, pack.size)];
    await this.store.storePack({ bytes, sizeBytes: pack.writer.bytes, entries });
  }

  /** Copies b to the pack buffer at `at`, growing it if need be; answers where the pack now ends. */
  private append(b: Buffer, at: number): number {
    if (at + b.length > this.packBytes.length) {
      // Room for a pack of the target size and its last blob, mostly: it grows at most a few times.
      const grown = Buffer.allocUnsafe(Math.max(at + b.length, packTargetBytes) + 2 * 1024 * 1024);
      this.packBytes.copy(grown, 0, 0, at);
      this.packBytes = grown;
    }
    return at + b.copy(this.packBytes, at);
  }
}

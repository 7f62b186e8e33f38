import { maxPackBlobs } from '../../common/pack-upload-limits.ts';
import { ChunkCompressor } from './chunk-compressor.ts';
import { packTargetBytes } from './pack-layout.ts';
import { PackWriter } from './pack-writer.ts';
import type { ChunkStore } from './tree-writer.ts';

// The packing half of a capture, run beside the reading half: while the tree writer reads, cuts and
// hashes the chunks of one batch, the batch before it is asked about, compressed on threads of its
// own and sealed into packs. One batch at a time each way, so the chunks held stay bounded.

/** Ids asked about at once: one request to the control plane per batch. */
export const askBatch = 1000;
/**
 * A batch's chunks, held while the destination is asked about them and until they are packed: in
 * one of two shared buffers, in turn, which the compressing threads read without a copy. Two of
 * 16 MiB hold what one batch of 32 MiB held before the packing ran beside the reading.
 */
const arenaBytes = 16 * 1024 * 1024;

interface Pending {
  id: string;
  offset: number;
  length: number;
}

/** Fills packs with the chunks the destination lacks, asking about them in batches. */
export class ChunkPacker {
  /** Chunks held, or handed to this packer: never asked about or packed twice. */
  readonly known = new Set<string>();
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private readonly arenas = [new SharedArrayBuffer(arenaBytes), new SharedArrayBuffer(arenaBytes)];
  private readonly views = this.arenas.map((a) => Buffer.from(a));
  /** The arena the pending chunks are in. */
  private arena = 0;
  /** Started with the first chunk to pack: a capture of unchanged files needs none. */
  private compressor: ChunkCompressor | undefined;
  /** The last batch handed on, packed once the one before it is; rejects with the first failure. */
  private packing: Promise<void> = Promise.resolve();
  private pack: { writer: PackWriter; bytes: Buffer[] } | undefined;
  readonly figures = { chunksStored: 0, bytesStored: 0, packs: 0, packedBytes: 0 };

  constructor(
    private readonly store: ChunkStore,
    private readonly publicKey: Buffer,
  ) {}

  /** Takes a chunk (copied: the view is the chunker's) unless already known. */
  async add(id: string, plain: Buffer): Promise<void> {
    if (this.known.has(id)) return;
    this.known.add(id);
    if (this.pending.length >= askBatch || this.pendingBytes + plain.length > arenaBytes) await this.flush();
    this.views[this.arena]!.set(plain, this.pendingBytes);
    this.pending.push({ id, offset: this.pendingBytes, length: plain.length });
    this.pendingBytes += plain.length;
  }

  /**
   * Hands the pending chunks on: asked about at once, and those needed sent to the compressing
   * threads as soon as the answer comes, then sealed and packed after the batch before them, which
   * this waits for (its arena is the one the next chunks go to). So one batch fills while another
   * is packed, and neither the question's round trip nor a batch's end leaves the threads idle.
   */
  async flush(): Promise<void> {
    const batch = this.pending;
    const arena = this.arena;
    this.pending = [];
    this.pendingBytes = 0;
    const previous = this.packing;
    if (batch.length) {
      this.arena ^= 1;
      const compressing = this.store.needed(batch.map((p) => p.id)).then((needed) => {
        const chunks = batch.filter((p) => needed.has(p.id));
        if (chunks.length) this.compressor ??= new ChunkCompressor(this.arenas);
        return chunks.map(({ id, offset, length }) => {
          const frame = this.compressor!.compress(arena, offset, length);
          frame.catch(() => {}); // awaited in order by packBatch, unless packing failed first
          return { id, plain: this.views[arena]!.subarray(offset, offset + length), frame };
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

  /** Stops the compressing threads, whether the capture finished or failed. */
  async close(): Promise<void> {
    await this.compressor?.close();
  }

  /** Sealed in order: a pack's entries follow the files. */
  private async packBatch(chunks: { id: string; plain: Buffer; frame: Promise<Buffer | null> }[]) {
    for (const { id, plain, frame } of chunks) await this.packChunk(id, plain, await frame);
  }

  private async packChunk(id: string, plain: Buffer, frame: Buffer | null): Promise<void> {
    if (!this.pack) {
      const bytes: Buffer[] = [];
      // The writer's bytes are valid until its next add: copied as they come.
      this.pack = { bytes, writer: new PackWriter(this.publicKey, (b) => bytes.push(Buffer.from(b))) };
    }
    this.pack.writer.add(Buffer.from(id, 'hex'), plain, frame);
    this.figures.chunksStored++;
    this.figures.bytesStored += plain.length;
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
    await this.store.storePack({ bytes: pack.bytes, sizeBytes: pack.writer.bytes, entries });
  }
}

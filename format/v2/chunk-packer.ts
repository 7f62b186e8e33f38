import { maxPackBlobs } from '../../common/pack-upload-limits.ts';
import { blobOverhead } from './blob.ts';
import { ChunkThreads } from './chunk-threads.ts';
import { maxChunkBytes } from './chunker.ts';
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
 * one of three shared buffers, in turn, which the hashing and compressing threads read without a
 * copy. A batch's question is asked once its chunks are hashed; with two buffers the reading waited
 * for its answer as soon as the next batch was read (16 MiB, some 15-20 ms), while answers took
 * 16-19 ms (29 at the 90th percentile) in the benchmark's changed rounds, the control plane sharing
 * the machine's two cores with the capture. Re-reading 2 GB of PostgreSQL files in process with
 * answers 20 and 30 ms away took 3.9 and 4.4 s with two buffers of 16 MiB, 3.5-3.6 with three, 3.6
 * and 3.7 with three of 13 MiB (more questions), 3.7-4.1 with three of 11 or four of 9. Three of 13:
 * with three of 16 the agent's peak (a 10 GiB first backup) reached 243-252 MiB, over its 250.
 */
const arenaBytes = 13 * 1024 * 1024;
const batchArenas = 3;
/** The pack being filled is the last arena: the threads seal each blob straight into its place. */
const packArena = batchArenas;
/**
 * A pack is stored once it reaches packTargetBytes, or before a blob that would take it past that
 * by more than packSlack (a pack of one blob excepted: a chunk is 8 MiB at most); then its index
 * (5,000 entries of 44 bytes at most) and trailer: 1 MiB is room for them. A pack's last blob was
 * let overshoot by a whole chunk before, which took 7 MiB more of buffer than this.
 */
const packSlack = 1024 * 1024;
const packBufferBytes = Math.max(packTargetBytes + packSlack, blobOverhead + maxChunkBytes) + 1024 * 1024;

interface OpenPack {
  writer: PackWriter;
  /** Where the pack's bytes end in the pack buffer. */
  size: number;
  /** Its blobs being sealed. */
  sealing: Promise<number>[];
}

interface Pending {
  id: Promise<string>;
  offset: number;
  length: number;
  /**
   * A check's (check): the chunk id its bytes must hash to, or they are never asked about or packed.
   */
  expected?: string;
}

/** Fills packs with the chunks the destination lacks, asking about them in batches. */
export class ChunkPacker {
  /** Chunks held, or hashed in this packer: never asked about or packed twice. */
  readonly known = new Set<string>();
  /** Questions asked ahead (expect), answered before a batch is asked about. */
  private expected: Promise<void> = Promise.resolve();
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private readonly arenas = [
    ...Array.from({ length: batchArenas }, () => new SharedArrayBuffer(arenaBytes)),
    new SharedArrayBuffer(packBufferBytes),
  ];
  private readonly views = this.arenas.map((a) => Buffer.from(a));
  /** The arena the pending chunks are in. */
  private arena = 0;
  /** Per arena, the packing of the last batch held in it: the arena is free again once it is done. */
  private readonly packed: Promise<void>[] = [];
  /** Started with the first chunk: a capture of unchanged files needs none. */
  private threads: ChunkThreads | undefined;
  /** The last batch handed on, packed once the one before it is; rejects with the first failure. */
  private packing: Promise<void> = Promise.resolve();
  /** The pack being filled, in the pack buffer for the whole capture (the store is done with a
   * pack's bytes once it has taken it). */
  private pack: OpenPack | undefined;
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
    const room = await this.room(plain.length);
    // Buffer's copy, a memmove: a typed array's set into shared memory copies with atomic care, three
    // times as long (0.12 s a GiB against 0.04, measured).
    plain.copy(room);
    return { id: this.hash(room) };
  }

  /**
   * Hashes `length` bytes that `fill` reads into their place (answering how many it read), a chunk
   * a file had where it may still be, on the threads as add's: answers its id, or undefined if fewer
   * bytes came. Taken as add's chunks are (known, else asked about and packed if the destination
   * lacks it) if its id is the `expected` one, which the caller compares it with; else dropped.
   * Checks are so spread over the threads, with no copy, and bounded as chunks are; and the reading
   * need not wait to know which of a file's chunks the destination still holds.
   */
  async check(
    length: number,
    fill: (into: Buffer) => Promise<number>,
    expected: string,
  ): Promise<{ id: Promise<string> } | undefined> {
    const room = await this.room(length);
    return (await fill(room)) === length ? { id: this.hash(room, expected) } : undefined;
  }

  /** The next chunk's place in the batch's arena, `length` bytes (the batch before flushed if full). */
  private async room(length: number): Promise<Buffer> {
    // A byte before each chunk: its blob's encoding byte is written there when it is sealed.
    if (this.pending.length >= askBatch || this.pendingBytes + 1 + length > arenaBytes) await this.flush();
    this.threads ??= new ChunkThreads(this.arenas, this.dedupKey);
    const offset = this.pendingBytes + 1;
    return this.views[this.arena]!.subarray(offset, offset + length);
  }

  /** Hashes the chunk in `room` (room's answer, filled) and adds it to the batch. */
  private hash(room: Buffer, expected?: string): Promise<string> {
    const offset = room.byteOffset;
    const id = this.threads!.hash(this.arena, offset, room.length);
    id.catch(() => {}); // awaited by the batch's flush, which fails first
    this.pending.push({ id, offset, length: room.length, expected });
    this.pendingBytes = offset + room.length;
    return id;
  }

  /**
   * Asks ahead about chunks likely to come again: a changed file's chunks as the previous capture cut
   * it, while the file is read. Those the destination holds become known, so a batch made of them is
   * packed without a question of its own, a round trip that the reading would otherwise wait on
   * (asked only once the batch before it is hashed, answered while this one fills).
   */
  expect(ids: string[]): void {
    const ask = [...new Set(ids)].filter((id) => !this.known.has(id));
    if (!ask.length) return;
    const answer = this.store.needed(ask).then((needed) => {
      for (const id of ask) if (!needed.has(id)) this.known.add(id);
    });
    this.expected = Promise.all([this.expected, answer]).then(() => {});
    this.expected.catch(() => {}); // awaited by the next batch's question, which fails with it
  }

  /**
   * Hands the pending chunks on: once hashed, those not known asked about, and those needed sent to
   * the threads to compress as soon as the answer comes, then sealed and packed after the batch
   * before them. Waits for the packing of the batch last held in the arena the next chunks go to,
   * two batches back. So one batch fills while the two before it are asked about and packed, and
   * neither the question's round trip nor a batch's end leaves the threads idle.
   */
  async flush(): Promise<void> {
    const batch = this.pending;
    const arena = this.arena;
    this.pending = [];
    this.pendingBytes = 0;
    const previous = this.packing;
    if (batch.length) {
      this.arena = (this.arena + 1) % batchArenas;
      const expected = this.expected;
      const compressing = Promise.all(batch.map((p) => p.id)).then(async (ids) => {
        await expected;
        const fresh: { id: string; offset: number; length: number }[] = [];
        for (const [i, id] of ids.entries()) {
          const checked = batch[i]!.expected;
          if ((checked !== undefined && id !== checked) || this.known.has(id)) continue;
          this.known.add(id);
          const { offset, length } = batch[i]!;
          fresh.push({ id, offset, length });
        }
        const needed = fresh.length ? await this.store.needed(fresh.map((p) => p.id)) : new Set();
        return fresh
          .filter((p) => needed.has(p.id))
          .map(({ id, offset, length }) => {
            const frame = this.threads!.compress(arena, offset, length);
            frame.catch(() => {}); // awaited in order by packBatch, unless packing failed first
            return { id, offset, length, frame };
          });
      });
      this.packing = previous.then(async () => this.packBatch(await compressing, arena));
      this.packed[arena] = this.packing;
      // Each is awaited later (the packing by the next flush or finish); failing before then is no crash.
      compressing.catch(() => {});
      this.packing.catch(() => {});
    }
    await this.packed[this.arena];
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

  /**
   * Placed in order (a pack's entries follow the files) and sealed on the threads, each blob where
   * its place in the pack buffer is; resolves once the batch's blobs are all sealed, its arena then
   * free again.
   */
  private async packBatch(
    chunks: { id: string; offset: number; length: number; frame: Promise<number> }[],
    arena: number,
  ) {
    const sealing: Promise<number>[] = [];
    for (const { id, offset, length, frame } of chunks) {
      // The place holds the chunk's zstd frame from its start now, or the chunk itself if size is 0.
      const size = await frame;
      const blobBytes = blobOverhead + (size || length);
      if (this.pack && this.pack.writer.bytes + blobBytes > packTargetBytes + packSlack)
        await this.storePack();
      if (!this.pack) {
        const pack = { size: 0, sealing: [] } as unknown as OpenPack;
        // The writer's bytes (its preamble, index and trailer) are valid until its next call: copied.
        pack.writer = new PackWriter(this.publicKey, (b) => (pack.size = this.append(b, pack.size)));
        this.pack = pack;
      }
      const { writer } = this.pack;
      const entry = writer.reserve(Buffer.from(id, 'hex'), blobBytes, length);
      if (entry.offset + entry.length > packBufferBytes)
        throw new RangeError('ChunkPacker: the pack outgrew its buffer');
      this.pack.size = entry.offset + entry.length;
      const sealed = this.threads!.seal(arena, offset, length, size, writer.dataKey, id, {
        arena: packArena,
        at: entry.offset,
      }).then((n) => {
        if (n !== entry.length)
          throw new Error(`ChunkPacker: a blob of ${n} bytes where ${entry.length} were placed`);
        return n;
      });
      sealed.catch(() => {}); // awaited below and by storePack, whichever comes first
      sealing.push(sealed);
      this.pack.sealing.push(sealed);
      this.figures.chunksStored++;
      this.figures.bytesStored += length;
      if (writer.bytes >= packTargetBytes || writer.count >= maxPackBlobs) await this.storePack();
    }
    await Promise.all(sealing);
  }

  private async storePack(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    await Promise.all(pack.sealing);
    const entries = pack.writer.finish();
    this.figures.packs++;
    this.figures.packedBytes += pack.writer.bytes;
    const bytes = [this.views[packArena]!.subarray(0, pack.size)];
    await this.store.storePack({ bytes, sizeBytes: pack.writer.bytes, entries });
  }

  /** Copies b to the pack buffer at `at`; answers where the pack now ends. */
  private append(b: Buffer, at: number): number {
    if (at + b.length > packBufferBytes) throw new RangeError('ChunkPacker: the pack outgrew its buffer');
    return at + b.copy(this.views[packArena]!, at);
  }
}

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkStore, FinishedPack } from '../format/v2/tree-writer.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { putFile, PartUploadError } from './http-upload.ts';
import type { RateLimit } from './rate-limit.ts';

export interface PackUploaderOptions {
  api: Pick<ControlPlaneClient, 'chunksNeeded' | 'startPack' | 'packStored'>;
  snapshotId: string;
  /** Where packs wait for their upload: the capture never waits for the network, the hold ends sooner. */
  dir: string;
  limit?: RateLimit;
  concurrency?: number;
  /** Once aborted, no further pack starts (those on their way finish): the step is to stop. */
  signal?: AbortSignal;
  onStored?: (bytesStored: number, packs: number) => void;
}

/**
 * The destination as the tree writer sees it: asks the control plane which chunks it lacks, and
 * sends each finished pack from the agent's disk to the URL the control plane presigned for it, then
 * reports it stored (the control plane checks the report against the object before recording it).
 * A retry after the agent died starts afresh: the chunks of every pack reported stored count as held
 * for the same backup, so they are not sent again, and a pack sent but not reported is left to
 * garbage collection.
 */
export class PackUploader implements ChunkStore {
  failure: Error | undefined;
  firstSentAt: number | undefined;
  private bytesStored = 0;
  private packs = 0;
  private written = 0;
  private readonly queue: { path: string; pack: FinishedPack }[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: PackUploaderOptions) {}

  /** Drops what an earlier attempt left: its packs were either reported stored or are garbage. */
  async reset(): Promise<void> {
    await rm(this.options.dir, { recursive: true, force: true });
    await mkdir(this.options.dir, { recursive: true });
  }

  needed(ids: string[]): Promise<Set<string>> {
    if (this.failure) throw this.failure;
    return this.options.api.chunksNeeded(
      this.options.snapshotId,
      ids.map((id) => Buffer.from(id, 'hex')),
    );
  }

  async storePack(pack: FinishedPack): Promise<void> {
    if (this.failure) throw this.failure;
    const path = join(this.options.dir, `${++this.written}.pack`);
    const file = await open(path, 'w');
    try {
      await file.writev(pack.bytes);
    } finally {
      await file.close();
    }
    // The bytes are on disk: the writer may drop them now.
    this.queue.push({ path, pack: { ...pack, bytes: [] } });
    this.pump();
  }

  private pump(): void {
    while (!this.failure && this.inFlight.size < (this.options.concurrency ?? 2) && this.queue.length) {
      const next = this.queue.shift()!;
      const upload = this.upload(next.path, next.pack).catch((err: Error) => {
        this.failure ??= err;
      });
      this.inFlight.add(upload);
      void upload.finally(() => {
        this.inFlight.delete(upload);
        this.pump();
      });
    }
  }

  private async upload(path: string, pack: FinishedPack): Promise<void> {
    const { api, snapshotId, limit, signal } = this.options;
    signal?.throwIfAborted();
    const { packId, url } = await api.startPack(snapshotId);
    this.firstSentAt ??= Date.now();
    // A receiver stores an object only with the hash of its bytes; a bucket's PUT needs none, and
    // hashing every pack cost the capture's main thread ~0.3 s per GiB.
    const sha256 = url.pin ? await sha256OfFile(path) : undefined;
    await putFile(url, path, pack.sizeBytes, { limit, sha256 }).catch((err: unknown) => {
      if (!(err instanceof PartUploadError)) throw err;
      throw new PartUploadError(`pack ${packId}: ${err.message}`, err.status);
    });
    await api.packStored(snapshotId, packId, { sizeBytes: pack.sizeBytes, entries: pack.entries });
    await rm(path, { force: true });
    this.bytesStored += pack.sizeBytes;
    this.packs++;
    this.options.onStored?.(this.bytesStored, this.packs);
  }

  /** After a failed capture: nothing more is sent, and what is on its way settles. */
  async halt(): Promise<void> {
    this.queue.length = 0;
    while (this.inFlight.size) await Promise.race(this.inFlight);
  }

  /** Every pack uploaded and reported; or the first failure. */
  async drain(): Promise<{ packs: number; bytes: number }> {
    while (this.inFlight.size || (this.queue.length && !this.failure)) {
      this.pump();
      await Promise.race(this.inFlight);
    }
    if (this.failure) throw this.failure;
    return { packs: this.packs, bytes: this.bytesStored };
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const bytes of createReadStream(path)) hash.update(bytes as Buffer);
  return hash.digest('hex');
}

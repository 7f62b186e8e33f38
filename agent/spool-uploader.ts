import { putFile, PartUploadError } from './http-upload.ts';
import type { RateLimit } from './rate-limit.ts';
import type { StorageUrl } from './storage-url.ts';
import type { UploadedPart, UploadSpool } from './upload-spool.ts';

export interface SpoolUploaderOptions {
  spool: UploadSpool;
  /** URLs for these part numbers, from the control plane. */
  partUrls: (partNumbers: number[]) => Promise<Map<number, StorageUrl>>;
  onPart?: (part: UploadedPart, bytesDone: number) => void;
  concurrency?: number;
  limit?: RateLimit;
  /** Once aborted, no further part starts (those on their way finish): the step is to stop. */
  signal?: AbortSignal;
}

const urlBatch = 16;

/**
 * Sends a spool's segments to the storage as multipart-upload parts, straight from the agent's disk
 * to presigned (bucket) or signed (receiver) URLs: the bytes never pass through the control plane or Temporal. Each part the
 * storage takes is noted in the spool before its segment is deleted.
 */
export class SpoolUploader {
  readonly parts: UploadedPart[] = [];
  failure: Error | undefined;
  firstSentAt: number | undefined;
  private bytesDone = 0;
  private readonly queue: { partNumber: number; size: number }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly batches = new Map<number, Promise<Map<number, StorageUrl>>>();

  constructor(private readonly options: SpoolUploaderOptions) {}

  /** Parts queued or on their way. */
  get pending(): number {
    return this.queue.length + this.inFlight.size;
  }

  add(partNumber: number, size: number): void {
    this.queue.push({ partNumber, size });
    this.pump();
  }

  /** Counts parts already in the bucket (a resumed upload) towards progress and the result. */
  adopt(parts: UploadedPart[]): void {
    this.parts.push(...parts);
    this.bytesDone += parts.reduce((sum, p) => sum + p.size, 0);
  }

  private pump(): void {
    while (!this.failure && this.inFlight.size < (this.options.concurrency ?? 2) && this.queue.length) {
      const { partNumber, size } = this.queue.shift()!;
      const upload = this.upload(partNumber, size).catch((err: Error) => {
        this.failure ??= err;
      });
      this.inFlight.add(upload);
      void upload.finally(() => {
        this.inFlight.delete(upload);
        this.pump();
      });
    }
  }

  private async url(partNumber: number): Promise<StorageUrl> {
    const batch = Math.floor((partNumber - 1) / urlBatch);
    let urls = this.batches.get(batch);
    if (!urls) {
      const first = batch * urlBatch + 1;
      urls = this.options.partUrls(Array.from({ length: urlBatch }, (_, i) => first + i));
      // Presigned URLs expire: a batch is fetched when first needed, and forgotten if that failed.
      urls.catch(() => this.batches.delete(batch));
      this.batches.set(batch, urls);
    }
    return (await urls).get(partNumber)!;
  }

  private async upload(partNumber: number, size: number): Promise<void> {
    this.options.signal?.throwIfAborted();
    const url = await this.url(partNumber);
    const sentAt = Date.now();
    this.firstSentAt ??= sentAt;
    const { spool, limit } = this.options;
    const etag = await putFile(url, spool.segment(partNumber), size, { limit }).catch((err: unknown) => {
      if (!(err instanceof PartUploadError)) throw err;
      throw new PartUploadError(`part ${partNumber}: ${err.message}`, err.status);
    });
    const part = { partNumber, etag, size };
    await spool.noteUploaded({ ...part, sentAt });
    this.parts.push(part);
    this.bytesDone += size;
    this.options.onPart?.(part, this.bytesDone);
  }

  /** Resolves when an upload on its way settles (or at once if none is). */
  async oneSettled(): Promise<void> {
    if (this.inFlight.size) await Promise.race(this.inFlight);
  }

  /** After a failed capture: nothing more is sent, and what is on its way settles before the retry can start. */
  async halt(): Promise<void> {
    this.queue.length = 0;
    while (this.inFlight.size) await Promise.race(this.inFlight);
  }

  /** Every queued part uploaded, in part-number order; or the first failure. */
  async drain(): Promise<UploadedPart[]> {
    while (this.inFlight.size) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    return [...this.parts].sort((a, b) => a.partNumber - b.partNumber);
  }
}

import { createHash } from 'node:crypto';
import {
  appendFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import type { VolumeTotal } from '../format/manifest.ts';
import type { SnapshotMethod } from '../common/host-tasks.ts';

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export class SpoolFullError extends Error {
  override name = 'SpoolFullError';
}

/** Written once the capture is whole: from then on a retry uploads what is missing instead of capturing again. */
export interface CapturedRecord {
  partSize: number;
  parts: number;
  sizeBytes: number;
  dataSha256: string;
  manifestSha256: string;
  tarBytes: number;
  entries: number;
  frozenMs: number;
  /** How each volume was taken; absent from a record an older agent spooled. */
  methods?: Record<string, SnapshotMethod>;
  capturedAt: number;
  /** The manifest's per-volume totals; absent from a record an older agent spooled. */
  volumes?: VolumeTotal[];
}

/**
 * One snapshot's encrypted stream on the agent's disk, cut into part-sized segment files, from the
 * moment it is captured until each part is in the bucket. It is what makes an upload resumable: the
 * stream cannot be made again (it is encrypted with a fresh key and nonce, of data that has moved on
 * since), so a retry sends the segments still here. Holds ciphertext and the sealed manifest only.
 *
 * Files: `part-NNNNN` (deleted once uploaded), `uploaded.jsonl` (a line per part the storage took,
 * written before its segment is deleted), `manifest`, `captured.json`.
 */
export class UploadSpool {
  constructor(
    readonly dir: string,
    readonly partSize: number,
  ) {}

  segment(partNumber: number): string {
    return join(this.dir, `part-${String(partNumber).padStart(5, '0')}`);
  }

  /** Spools of this environment's earlier backups: a run that gave up leaves its own behind. */
  async dropOthers(): Promise<void> {
    const parent = dirname(this.dir);
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const path = join(parent, name);
      if (path !== this.dir) await rm(path, { recursive: true, force: true });
    }
  }

  async reset(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }

  async captured(): Promise<CapturedRecord | undefined> {
    const text = await readFile(join(this.dir, 'captured.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as CapturedRecord);
  }

  async markCaptured(record: CapturedRecord, manifest: Buffer): Promise<void> {
    await writeFile(this.manifestPath, manifest);
    const path = join(this.dir, 'captured.json');
    await writeFile(`${path}.tmp`, JSON.stringify(record));
    await rename(`${path}.tmp`, path);
  }

  get manifestPath(): string {
    return join(this.dir, 'manifest');
  }

  async noteUploaded(part: UploadedPart & { sentAt: number }): Promise<void> {
    await appendFile(join(this.dir, 'uploaded.jsonl'), `${JSON.stringify(part)}\n`);
    await rm(this.segment(part.partNumber), { force: true });
  }

  async uploaded(): Promise<Map<number, UploadedPart & { sentAt: number }>> {
    const text = await readFile(join(this.dir, 'uploaded.jsonl'), 'utf8').catch(() => '');
    const parts = new Map<number, UploadedPart & { sentAt: number }>();
    // A line cut short by a kill is the last one, and its part is sent again.
    for (const line of text.split('\n')) {
      try {
        const part = JSON.parse(line) as UploadedPart & { sentAt: number };
        parts.set(part.partNumber, part);
      } catch {
        continue;
      }
    }
    return parts;
  }

  async hasSegment(partNumber: number, size: number): Promise<boolean> {
    return (await stat(this.segment(partNumber)).catch(() => undefined))?.size === size;
  }

  /** Free bytes on the spool's file system beyond what must stay free for the server's own use. */
  async room(): Promise<number> {
    const fs = await statfs(this.dir);
    const reserve = Math.min(1024 ** 3, 0.05 * fs.blocks * fs.bsize);
    return fs.bavail * fs.bsize - reserve;
  }
}

/**
 * The sink of a capture: writes the stream into the spool's segment files and hands each full one
 * to `onPart`. Before it starts a segment it waits for `makeRoom`, which holds it back while the
 * disk is short and uploads are still freeing some.
 */
export class SpoolWriter extends Writable {
  private readonly sha256 = createHash('sha256');
  private file: FileHandle | undefined;
  private filled = 0;
  private partNumber = 0;
  size = 0;

  constructor(
    private readonly spool: UploadSpool,
    private readonly onPart: (partNumber: number, size: number) => void,
    private readonly makeRoom: () => Promise<void>,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  get parts(): number {
    return this.partNumber;
  }

  digest(): string {
    return this.sha256.digest('hex');
  }

  private async closePart(): Promise<void> {
    await this.file!.close();
    this.file = undefined;
    this.onPart(this.partNumber, this.filled);
  }

  private async write_(chunk: Buffer): Promise<void> {
    this.sha256.update(chunk);
    this.size += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.file) {
        await this.makeRoom();
        this.file = await open(this.spool.segment(++this.partNumber), 'w');
        this.filled = 0;
      }
      const n = Math.min(this.spool.partSize - this.filled, chunk.length - offset);
      await this.file.write(chunk, offset, n);
      this.filled += n;
      offset += n;
      if (this.filled === this.spool.partSize) await this.closePart();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.write_(chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    (this.file ? this.closePart() : Promise.resolve()).then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    void (this.file?.close() ?? Promise.resolve()).finally(() => done(err));
  }
}

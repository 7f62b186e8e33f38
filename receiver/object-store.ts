import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { maxPartBytes, maxPartNumber } from '../storage/receiver-urls.ts';
import { hashFile, receiveInto, syncDirectory, syncFile } from './durable-files.ts';
import { checkKey, StoreError } from './object-keys.ts';

// A part's file is named by its number and its SHA-256 (its etag).
const partFile = /^(\d+)\.([0-9a-f]{64})$/;

export interface AppendInput {
  /** Where this body starts in the object: the size the partial upload has reached. */
  offset: number;
  /** This body's length (its Content-Length). */
  length: number;
  /** The whole object's size and SHA-256 (hex). */
  total: number;
  sha256: string;
  body: Readable;
  /** A whole upload in one request: what an earlier try left is dropped first. */
  restart?: boolean;
}

/** A part of a multipart upload the receiver holds; its ETag is its SHA-256. */
export interface StoredPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** Where an upload stands: how many bytes of it are safely on disk. */
export interface UploadState {
  complete: boolean;
  size: number;
}

/**
 * The receiver's objects under one data directory: `objects/<key>` complete and immutable,
 * `partial/<key>` being written. An upload appends at the offset the partial file has reached, so a
 * broken connection resumes where it stopped; it becomes an object only once whole, its SHA-256 equal
 * to the one announced, fsynced, and linked into place (link(2) fails if the object exists: an object
 * is never overwritten, not even by a race of two uploads).
 *
 * Multipart uploads, as in S3, for objects whose size and hash are known only at the end (a snapshot
 * streamed from a spool): each part is written whole or not at all under `uploads/<key>/`, and
 * completing one joins the named parts into `partial/<key>`, checks size and SHA-256, and links it
 * into place like any upload.
 *
 * One class of ~300 lines, not a file per kind of upload: both kinds share the paths, the one-writer
 * rule (`alone`) and the final link into place, and read together they show that no path of either
 * can overwrite an object.
 */
export class ObjectStore {
  private readonly writing = new Set<string>();

  constructor(readonly root: string) {}

  private objectPath(key: string): string {
    return join(this.root, 'objects', ...checkKey(key).split('/'));
  }

  private partialPath(key: string): string {
    return join(this.root, 'partial', ...checkKey(key).split('/'));
  }

  private uploadDir(key: string): string {
    return join(this.root, 'uploads', ...checkKey(key).split('/'));
  }

  /** Runs `work` as the only writer of `name`; a second one meanwhile is refused, not queued. */
  private async alone<T>(name: string, work: () => Promise<T>): Promise<T> {
    if (this.writing.has(name))
      throw new StoreError(409, 'busy', `${name} is being uploaded by another request; retry when it ends`);
    this.writing.add(name);
    try {
      return await work();
    } finally {
      this.writing.delete(name);
    }
  }

  private async refuseExisting(key: string): Promise<void> {
    if (await stat(this.objectPath(key)).catch(() => undefined))
      throw new StoreError(409, 'exists', `${key} exists and is never overwritten`);
  }

  /** Stores part `partNumber` of the upload of `key` (replacing an earlier try of the same part) and answers its ETag. */
  async putPart(key: string, partNumber: number, length: number, body: Readable): Promise<StoredPart> {
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > maxPartNumber)
      throw new StoreError(400, 'bad_part', `part numbers run from 1 to ${maxPartNumber}`);
    if (length > maxPartBytes)
      throw new StoreError(413, 'too_large', `a part is at most ${maxPartBytes} bytes, not ${length}`);
    return this.alone(`${key} part ${partNumber}`, async () => {
      await this.refuseExisting(key);
      const dir = this.uploadDir(key);
      await mkdir(dir, { recursive: true });
      const temporary = join(dir, `${partNumber}.tmp`);
      const hash = createHash('sha256');
      let size = 0;
      body.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      try {
        await receiveInto(temporary, 0, body);
        if (size !== length)
          throw new StoreError(400, 'truncated', `part ${partNumber} has ${size} of ${length} bytes`);
        await syncFile(temporary);
      } catch (err) {
        await rm(temporary, { force: true });
        throw err;
      }
      const etag = hash.digest('hex');
      await rename(temporary, join(dir, `${partNumber}.${etag}`));
      for (const name of await readdir(dir))
        if (name.startsWith(`${partNumber}.`) && name !== `${partNumber}.${etag}` && partFile.test(name))
          await rm(join(dir, name), { force: true });
      await syncDirectory(dir);
      return { partNumber, etag, size };
    });
  }

  /** The parts an unfinished upload of `key` holds. */
  async listParts(key: string): Promise<StoredPart[]> {
    const dir = this.uploadDir(key);
    const parts: StoredPart[] = [];
    for (const name of await readdir(dir).catch(() => [])) {
      const match = partFile.exec(name);
      if (match)
        parts.push({
          partNumber: Number(match[1]),
          etag: match[2]!,
          size: (await stat(join(dir, name))).size,
        });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Joins the named parts, in order, into the object `key`, which must then have `size` bytes hashing
   * to `sha256`. Done again after it succeeded, it answers the object as stored.
   */
  async completeUpload(
    key: string,
    { parts, size, sha256 }: { parts: { partNumber: number; etag: string }[]; size: number; sha256: string },
  ): Promise<UploadState> {
    return this.alone(key, async () => {
      const done = await stat(this.objectPath(key)).catch(() => undefined);
      if (done) {
        if (done.size === size) return { complete: true, size };
        throw new StoreError(409, 'exists', `${key} exists and is never overwritten`);
      }
      // Each part once, in order, and no more than S3 allows: else one stored part named ten thousand
      // times would make the receiver write ten thousand times its size.
      if (!parts.length || parts.length > maxPartNumber)
        throw new StoreError(400, 'bad_parts', `an upload completes with 1 to ${maxPartNumber} parts`);
      parts.forEach((p, i) => {
        if (i > 0 && p.partNumber <= parts[i - 1]!.partNumber)
          throw new StoreError(400, 'bad_parts', 'the parts must be listed in ascending order, each once');
      });
      const dir = this.uploadDir(key);
      const files = await Promise.all(
        parts.map(async ({ partNumber, etag }) => {
          const path = join(dir, `${partNumber}.${etag}`);
          const found = partFile.test(`${partNumber}.${etag}`) && (await stat(path).catch(() => undefined));
          if (!found)
            throw new StoreError(
              400,
              'missing_part',
              `part ${partNumber} with ETag ${etag} is not in the upload of ${key}`,
            );
          return { path, size: found.size };
        }),
      );
      // Checked before a byte is joined: parts that do not add up to the size are refused, not written.
      const sum = files.reduce((total, f) => total + f.size, 0);
      if (sum !== size)
        throw new StoreError(400, 'size_mismatch', `the parts add up to ${sum} bytes, not ${size}`);
      const partial = this.partialPath(key);
      await mkdir(dirname(partial), { recursive: true });
      const hash = createHash('sha256');
      try {
        const out = await open(partial, 'w');
        try {
          for (const file of files)
            for await (const chunk of createReadStream(file.path, { highWaterMark: 1 << 20 })) {
              hash.update(chunk as Buffer);
              await out.write(chunk as Buffer);
            }
          await out.sync();
        } finally {
          await out.close();
        }
      } catch (err) {
        await rm(partial, { force: true });
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
          throw new StoreError(507, 'disk_full', 'the receiver’s disk is full: nothing stored was changed');
        throw err;
      }
      const joined = (await stat(partial)).size;
      if (joined !== size || hash.digest('hex') !== sha256) {
        await rm(partial, { force: true });
        throw new StoreError(
          422,
          'hash_mismatch',
          `the parts of ${key} make ${joined} bytes that do not match the announced size ${size} and SHA-256`,
        );
      }
      await this.linkIntoPlace(key, partial);
      await rm(dir, { recursive: true, force: true });
      return { complete: true, size };
    });
  }

  /** Drops an unfinished upload and its parts (never a complete object). */
  async abortUpload(key: string): Promise<void> {
    await rm(this.uploadDir(key), { recursive: true, force: true });
  }

  async state(key: string): Promise<UploadState | undefined> {
    const done = await stat(this.objectPath(key)).catch(() => undefined);
    if (done) return { complete: true, size: done.size };
    const partial = await stat(this.partialPath(key)).catch(() => undefined);
    return partial ? { complete: false, size: partial.size } : undefined;
  }

  /**
   * Appends `body` at `offset` of the upload of `key`, whose whole is `total` bytes hashing to
   * `sha256`; completes the object when the last byte is in. Answers where the upload stands.
   */
  async append(key: string, input: AppendInput): Promise<UploadState> {
    // Two writers of one object would interleave: the second is refused while the first runs.
    return this.alone(key, () => this.appendAlone(key, input));
  }

  private async appendAlone(
    key: string,
    { offset, length, total, sha256, body, restart }: AppendInput,
  ): Promise<UploadState> {
    // The same whole object sent again (a retry that did not hear the first answer) is no overwrite.
    const stored = await stat(this.objectPath(key)).catch(() => undefined);
    if (stored && restart && stored.size === total && (await hashFile(this.objectPath(key))) === sha256) {
      body.resume();
      await once(body, 'end');
      return { complete: true, size: stored.size };
    }
    await this.refuseExisting(key);
    const partial = this.partialPath(key);
    await mkdir(dirname(partial), { recursive: true });
    if (restart) await rm(partial, { force: true });
    const had = (await stat(partial).catch(() => undefined))?.size ?? 0;
    if (offset !== had)
      throw new StoreError(409, 'wrong_offset', `the upload of ${key} stands at ${had} bytes, not ${offset}`);
    if (total < offset) throw new StoreError(400, 'bad_total', 'the total is smaller than the offset');
    if (offset + length > total)
      throw new StoreError(
        413,
        'too_large',
        `${offset} + ${length} bytes is more than the announced ${total}`,
      );
    try {
      await receiveInto(partial, offset, body);
    } finally {
      // What arrived is kept for the resume, whatever happened.
      await syncFile(partial);
    }
    const size = (await stat(partial)).size;
    if (size < total) return { complete: false, size };
    if ((await hashFile(partial)) !== sha256) {
      await unlink(partial);
      throw new StoreError(
        422,
        'hash_mismatch',
        `${key} does not hash to the announced SHA-256; the upload was discarded`,
      );
    }
    await this.linkIntoPlace(key, partial);
    return { complete: true, size };
  }

  /** A whole, checked upload becomes the object: link(2) fails if it exists, so nothing is overwritten even in a race. */
  private async linkIntoPlace(key: string, partial: string): Promise<void> {
    const target = this.objectPath(key);
    await mkdir(dirname(target), { recursive: true });
    try {
      await link(partial, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new StoreError(409, 'exists', `${key} exists and is never overwritten`);
      throw err;
    }
    await unlink(partial);
    await syncDirectory(dirname(target));
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.objectPath(key), range);
  }

  async remove(key: string): Promise<void> {
    await this.abortUpload(key);
    await rm(this.objectPath(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new StoreError(404, 'not_found', `no object ${key}`);
      throw err;
    });
  }

  /**
   * Drops what unfinished uploads left (parts, partial objects) untouched for `olderThanMs`: a backup
   * that failed while the receiver could not be told, or a client that never came back. Complete
   * objects are never touched.
   */
  async sweep(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (now - (await stat(path)).mtimeMs > olderThanMs) {
          await rm(path, { force: true });
          removed++;
        }
      }
    };
    await walk(join(this.root, 'uploads'));
    await walk(join(this.root, 'partial'));
    return removed;
  }

  /** Complete objects under a prefix, with their sizes. */
  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const base = join(this.root, 'objects');
    const out: { key: string; size: number }[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else {
          const key = relative(base, path).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, size: (await stat(path)).size });
        }
      }
    };
    await walk(base);
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }
}

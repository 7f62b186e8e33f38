import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';

/** A refusal the HTTP layer turns into its status; nothing stored was touched. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// team/environment/snapshot names and file names: letters, digits, dot, dash and underscore, never
// starting with a dot, so no segment can be "..", hidden, or reach outside the data directory.
const segment = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const maxKeyLength = 512;

export function checkKey(key: string): string {
  const parts = key.split('/');
  if (key.length > maxKeyLength || !parts.every((p) => segment.test(p)))
    throw new StoreError(
      400,
      'bad_key',
      `object names are up to ${maxKeyLength} characters of /-separated segments of letters, digits, ".", "-" and "_", not starting with "."`,
    );
  return key;
}

export interface AppendInput {
  /** Where this body starts in the object: the size the partial upload has reached. */
  offset: number;
  /** This body's length (its Content-Length). */
  length: number;
  /** The whole object's size and SHA-256 (hex). */
  total: number;
  sha256: string;
  body: Readable;
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
    if (this.writing.has(key))
      throw new StoreError(409, 'busy', `${key} is being uploaded by another request; retry when it ends`);
    this.writing.add(key);
    try {
      return await this.appendAlone(key, input);
    } finally {
      this.writing.delete(key);
    }
  }

  private async appendAlone(
    key: string,
    { offset, length, total, sha256, body }: AppendInput,
  ): Promise<UploadState> {
    const target = this.objectPath(key);
    if (await stat(target).catch(() => undefined))
      throw new StoreError(409, 'exists', `${key} exists and is never overwritten`);
    const partial = this.partialPath(key);
    await mkdir(dirname(partial), { recursive: true });
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
    const out = createWriteStream(partial, { flags: offset === 0 ? 'w' : 'r+', start: offset });
    try {
      // pipe(), not pipeline(): a failed write must leave the request alive to answer it (507).
      await new Promise<void>((resolve, reject) => {
        out.once('error', (err) => {
          body.unpipe(out);
          body.resume(); // the rest of the body is read and dropped, so the answer can go out
          reject(err);
        });
        body.once('error', reject);
        body.once('aborted', () =>
          reject(
            new StoreError(
              400,
              'aborted',
              'the client went away mid-upload; what arrived is kept for a resume',
            ),
          ),
        );
        out.once('finish', resolve);
        body.pipe(out);
      });
    } catch (err) {
      out.destroy();
      if (!out.closed) await once(out, 'close');
      // What arrived is kept for the resume; the disk being full is said as such.
      await syncFile(partial);
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
        throw new StoreError(507, 'disk_full', 'the receiver’s disk is full: nothing stored was changed');
      throw err;
    }
    await syncFile(partial);
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
    return { complete: true, size };
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.objectPath(key), range);
  }

  async remove(key: string): Promise<void> {
    await rm(this.objectPath(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new StoreError(404, 'not_found', `no object ${key}`);
      throw err;
    });
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

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StoreError } from './object-keys.ts';

// The file work under the object store: bodies written to disk, hashed, and made durable (the file and
// the directory entry that names it) before the receiver answers that a part or an object is stored.

/**
 * Writes a request body into `path` from `offset`. pipe(), not pipeline(): a failed write must leave
 * the request alive to answer it (507). A full disk is said as such.
 */
export async function receiveInto(path: string, offset: number, body: Readable): Promise<void> {
  const out = createWriteStream(path, { flags: offset === 0 ? 'w' : 'r+', start: offset });
  try {
    await new Promise<void>((resolve, reject) => {
      out.once('error', (err) => {
        body.unpipe(out);
        body.resume(); // the rest of the body is read and dropped, so the answer can go out
        reject(err);
      });
      body.once('error', reject);
      body.once('aborted', () => reject(new StoreError(400, 'aborted', 'the client went away mid-upload')));
      out.once('finish', resolve);
      body.pipe(out);
    });
  } catch (err) {
    out.destroy();
    if (!out.closed) await once(out, 'close');
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
      throw new StoreError(507, 'disk_full', 'the receiver’s disk is full: nothing stored was changed');
    throw err;
  }
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

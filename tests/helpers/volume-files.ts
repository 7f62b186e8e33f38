import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The files of a (flat) volume with their SHA-256, the service's pid file aside: to compare its data. */
export async function volumeHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort())
    if (name !== 'pid')
      out[name] = createHash('sha256')
        .update(await readFile(join(dir, name)))
        .digest('hex');
  return out;
}

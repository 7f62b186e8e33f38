import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from '../common/zod-mini.ts';
import type { CachedFile } from '../format/v2/tree-writer.ts';
import { confined } from './confined-path.ts';

// The agent's note of each file its last format-2 capture of an environment stored, so the next one
// reads only what changed (docs/FORMAT.md, "Version 2"). It is the agent's own: a server can never
// open a manifest, and needs none to know what it read last time. Whatever is wrong with the note
// (missing, damaged, another version) costs one full read, never a wrong snapshot: every chunk it
// names is confirmed held by the destination before it is referenced, and a changed file's chunks
// are taken again only once hashed from the bytes read (format/v2/tree-writer.ts).

/**
 * 2 since the chunk ids became HMAC-SHA-256: a note of version 1 names keyed BLAKE2b ids, which a
 * capture would find held (the destination still has their chunks) and reference beside the new ones.
 */
const version = 2;

const cacheSchema = z.strictObject({
  version: z.literal(version),
  files: z.record(
    z.string(),
    z.strictObject({
      size: z.number(),
      mtimeNs: z.string(),
      ctimeNs: z.string(),
      ino: z.string(),
      chunks: z.array(z.string().check(z.regex(/^[0-9a-f]{64}$/))),
      // Since 2026-12-07; a note without them still spares the unchanged files.
      lengths: z.optional(z.array(z.int())),
    }),
  ),
});

const pathOf = (capturesRoot: string, environmentId: string) =>
  confined(capturesRoot, 'files', `${environmentId}.json`);

export async function loadFilesCache(
  capturesRoot: string,
  environmentId: string,
): Promise<Map<string, CachedFile>> {
  try {
    const parsed = cacheSchema.safeParse(
      JSON.parse(await readFile(pathOf(capturesRoot, environmentId), 'utf8')),
    );
    if (parsed.success) return new Map(Object.entries(parsed.data.files));
  } catch {
    // Missing or unreadable: the capture reads every file.
  }
  return new Map();
}

/** Replaced whole, through a rename: a crash leaves the old note or the new one. */
export async function saveFilesCache(
  capturesRoot: string,
  environmentId: string,
  files: ReadonlyMap<string, CachedFile>,
): Promise<void> {
  const path = pathOf(capturesRoot, environmentId);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify({ version, files: Object.fromEntries(files) }));
  await rename(`${path}.tmp`, path);
}

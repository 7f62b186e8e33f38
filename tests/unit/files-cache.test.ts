import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { loadFilesCache, saveFilesCache } from '../../agent/files-cache.ts';
import type { CachedFile } from '../../format/v2/tree-writer.ts';

const root = await mkdtemp(join(tmpdir(), 'files-cache-'));
after(() => rm(root, { recursive: true, force: true }));

const file: CachedFile = {
  size: 3,
  mtimeNs: '1795000000123456789',
  ctimeNs: '1795000000123456789',
  ino: '42',
  chunks: ['ab'.repeat(32)],
  lengths: [3],
};

it('keeps the files of the last capture, per environment', async () => {
  await saveFilesCache(root, 'env_a', new Map([['pgdata/PG_VERSION', file]]));
  assert.deepEqual(await loadFilesCache(root, 'env_a'), new Map([['pgdata/PG_VERSION', file]]));
  assert.deepEqual(await loadFilesCache(root, 'env_b'), new Map());
});

it('forgets a note of another version or a damaged one: every file is read again', async () => {
  await saveFilesCache(root, 'env_c', new Map([['f', file]]));
  const path = join(root, 'files', 'env_c.json');
  const note = JSON.parse(await readFile(path, 'utf8'));
  // Version 1 named keyed BLAKE2b ids: referenced beside HMAC-SHA-256 ones, they would fail the restore.
  await writeFile(path, JSON.stringify({ ...note, version: 1 }));
  assert.deepEqual(await loadFilesCache(root, 'env_c'), new Map());
  await writeFile(path, '{"version": 2, "files": {"f": ');
  assert.deepEqual(await loadFilesCache(root, 'env_c'), new Map());
});

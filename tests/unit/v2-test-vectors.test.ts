import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { parsePrintableSecretKey } from '../../format/team-key.ts';
import { BlobOpener } from '../../format/v2/blob.ts';
import { dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { cutPoint } from '../../format/v2/chunker.ts';
import { gear } from '../../format/v2/gear.ts';
import type { FormatV2Error } from '../../format/v2/errors.ts';
import { openManifestV2 } from '../../format/v2/manifest-v2.ts';
import { preambleBytes, tailBytesOf, type PackEntry } from '../../format/v2/pack-layout.ts';
import { openPackIndex, readPack } from '../../format/v2/pack-reader.ts';

const root = fileURLToPath(new URL('../../docs/test-vectors/', import.meta.url));
const vector = (name: string) => readFileSync(join(root, 'v2', name));
const secretKey = parsePrintableSecretKey(readFileSync(join(root, 'team.key'), 'utf8'));
const dedupKey = dedupKeyOf(secretKey);

it('derives the gear table and the dedup key as the vectors say', () => {
  const table = vector('gear.txt').toString().trim().split('\n');
  assert.deepEqual(
    table,
    Array.from(gear(), (g) => (g >>> 0).toString(16).padStart(8, '0')),
  );
  assert.equal(dedupKey.toString('hex'), vector('dedup.key').toString().trim());
});

it('cuts the chunking vector where it says', () => {
  const expected = JSON.parse(vector('cuts.json').toString()) as {
    bytes: number;
    cuts: { length: number }[];
  };
  const blocks = Array.from({ length: expected.bytes / 32 }, (_, k) => {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(k);
    return createHash('sha256').update('strackt-chunking-vector-v1').update(counter).digest();
  });
  const input = Buffer.concat(blocks);
  const lengths: number[] = [];
  for (let at = 0; at < input.length; at += lengths.at(-1)!) lengths.push(cutPoint(input, at, input.length));
  assert.deepEqual(
    lengths,
    expected.cuts.map((c) => c.length),
  );
});

it('reads the pack vector, and names each tampered copy', () => {
  const expected = JSON.parse(vector('hello.pack.json').toString()) as { id: string; plain: string }[];
  const read = [...readPack(vector('hello.pack'), { secretKey }, dedupKey)];
  assert.deepEqual(
    read.map((c) => [c.entry.id.toString('hex'), c.plain.toString('base64')]),
    expected.map((e) => [e.id, e.plain]),
  );
  const errors = JSON.parse(vector('expected-errors.json').toString()) as Record<string, string>;
  for (const [what, kind] of Object.entries(errors)) {
    const [file, , keyFile] = what.split(' ');
    const key = keyFile ? parsePrintableSecretKey(readFileSync(join(root, keyFile), 'utf8')) : secretKey;
    assert.throws(
      () => [...readPack(vector(file!), { secretKey: key }, dedupKey)],
      (err: FormatV2Error) => (assert.equal(err.kind, kind, what), true),
    );
  }
});

it('restores the bucket vector from the bucket and the team key alone', async () => {
  // What docs/FORMAT.md tells a reader to do: index every pack by its preamble and tail, then
  // assemble each file of the manifest from its chunks, each checked against its id.
  const bucket = join(root, 'v2', 'bucket', 'team_vector');
  const where = new Map<string, { pack: Buffer; dataKey: Buffer; entry: PackEntry }>();
  for (const name of readdirSync(join(bucket, 'packs'), { recursive: true, withFileTypes: true })) {
    if (!name.isFile()) continue;
    const pack = readFileSync(join(name.parentPath, name.name));
    // A first read of 64 KiB, then more if the trailer says the index needs it.
    let tail = pack.subarray(Math.max(0, pack.length - 65536));
    if (tailBytesOf(tail) > tail.length) tail = pack.subarray(pack.length - tailBytesOf(tail));
    const index = openPackIndex(pack.subarray(0, preambleBytes), tail, pack.length, { secretKey });
    for (const entry of index.entries)
      where.set(entry.id.toString('hex'), { pack, dataKey: index.dataKey, entry });
  }
  const manifest = await openManifestV2(
    readFileSync(join(bucket, 'env_vector', 'snap_vector', 'manifest.json.strackt')),
    { secretKey },
  );
  const opener = new BlobOpener(dedupKey);
  const sums = manifest.entries
    .filter((e) => e.type === 'file')
    .map((e) => {
      const content = Buffer.concat(
        e.chunks!.map((id) => {
          const { pack, dataKey, entry } = where.get(id)!;
          return opener.open(dataKey, entry.id, pack.subarray(entry.offset, entry.offset + entry.length));
        }),
      );
      assert.equal(content.length, e.size);
      return `${createHash('sha256').update(content).digest('hex')}  ${e.path}\n`;
    });
  assert.equal(sums.join(''), vector('bucket.sha256').toString());
});

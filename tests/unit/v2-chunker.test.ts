import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { chunkIdOf, dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { Chunker, cutPoint, type ChunkParams } from '../../format/v2/chunker.ts';
import { gear } from '../../format/v2/gear.ts';
import { generateTeamKey } from '../../format/team-key.ts';

const small: ChunkParams = { min: 2048, avg: 8192, max: 65536 };
const noise = (n: number, seed = 1) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));

function cutAll(data: Buffer, params = small): number[] {
  const lengths: number[] = [];
  for (let at = 0; at < data.length; at += lengths.at(-1)!)
    lengths.push(cutPoint(data, at, data.length, params));
  return lengths;
}

it('builds the gear table by its published rule', () => {
  for (const b of [0, 1, 127, 255]) {
    const digest = createHash('sha256').update(
      Buffer.from(`strackt-gear-v1${String.fromCharCode(b)}`, 'latin1'),
    );
    assert.equal(gear()[b], digest.digest().readInt32BE(0));
  }
});

it('cuts within the bounds, covering every byte once', () => {
  const data = noise(1024 * 1024);
  const lengths = cutAll(data);
  assert.equal(
    lengths.reduce((a, b) => a + b),
    data.length,
  );
  for (const n of lengths.slice(0, -1)) assert.ok(n >= small.min && n <= small.max, `${n}`);
  const mean = data.length / lengths.length;
  assert.ok(mean > small.avg * 0.8 && mean < small.avg * 2, `mean ${mean}`);
  // Data with no cut point at all, as a run of zeros, makes chunks of the maximum size.
  assert.deepEqual(cutAll(Buffer.alloc(3 * small.max + 5)), [small.max, small.max, small.max, 5]);
  assert.deepEqual(cutAll(Buffer.alloc(100)), [100]);
});

it('finds the same chunks again after an insertion', () => {
  const key = dedupKeyOf(generateTeamKey().secretKey);
  const data = noise(2 * 1024 * 1024);
  const ids = (d: Buffer) => {
    const out = new Set<string>();
    let at = 0;
    for (const n of cutAll(d)) out.add(chunkIdOf(key, d.subarray(at, (at += n))).toString('hex'));
    return out;
  };
  const before = ids(data);
  const after = ids(
    Buffer.concat([data.subarray(0, 500_000), Buffer.from('inserted'), data.subarray(500_000)]),
  );
  const lost = [...before].filter((id) => !after.has(id)).length;
  assert.ok(lost <= 2, `${lost} of ${before.size} chunks changed`);
});

it('streams the same cuts as the whole buffer, whatever the input pieces', async () => {
  // Noise, then a run with no cut point (chunks of the maximum size), then noise again.
  const data = Buffer.concat([noise(300_000, 3), Buffer.alloc(2.5 * small.max), noise(50_000, 4)]);
  const chunker = new Chunker(small);
  for (const piece of [13, 4096, 65536, 100_003, 3 * small.max]) {
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; at += piece) parts.push(data.subarray(at, at + piece));
    const lengths: number[] = [];
    const chunks: Buffer[] = [];
    // Each chunk is valid until the next is asked for: copy what is kept.
    for await (const c of chunker.chunksOf(Readable.from(parts))) {
      lengths.push(c.length);
      chunks.push(Buffer.from(c));
    }
    assert.deepEqual(lengths, cutAll(data), `pieces of ${piece}`);
    assert.deepEqual(Buffer.concat(chunks), data);
  }
});

it("cuts as the format's reference rule at the format's own parameters", async () => {
  // The chunker scans in WebAssembly (gear-scan.ts); cutPoint is the rule as docs/FORMAT.md writes it.
  const text = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(100_000));
  const data = Buffer.concat([noise(5_000_000, 5), Buffer.alloc(9 * 1024 * 1024), text, noise(3_000_000, 6)]);
  const reference: number[] = [];
  for (let at = 0; at < data.length; at += reference.at(-1)!) reference.push(cutPoint(data, at, data.length));
  const lengths: number[] = [];
  for await (const c of new Chunker().chunksOf(Readable.from([data]))) lengths.push(c.length);
  assert.deepEqual(lengths, reference);
  assert.ok(reference.includes(8 * 1024 * 1024), 'a run with no cut makes a chunk of the maximum size');
});

import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateTeamKey } from '../../format/team-key.ts';
import { BlobOpener, BlobSealer } from '../../format/v2/blob.ts';
import { chunkIdOf, dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { FormatV2Error, type FormatV2ErrorKind } from '../../format/v2/errors.ts';
import { packObjectKey, preambleBytes, tailBytesOf } from '../../format/v2/pack-layout.ts';
import { openPackIndex, readPack } from '../../format/v2/pack-reader.ts';
import { PackWriter } from '../../format/v2/pack-writer.ts';

const team = generateTeamKey();
const dedupKey = dedupKeyOf(team.secretKey);
const noise = (n: number, seed: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));
const chunks = [Buffer.from('hello '.repeat(5000)), noise(70_000, 1), Buffer.alloc(0), Buffer.from('x')];

function pack(items = chunks, publicKey = team.publicKey) {
  const parts: Buffer[] = [];
  const writer = new PackWriter(publicKey, (b) => parts.push(Buffer.from(b)));
  for (const c of items) writer.add(chunkIdOf(dedupKey, c), c);
  const dataKey = Buffer.from(writer.dataKey);
  const entries = writer.finish();
  // Finished, the writer holds its data key no longer.
  assert.deepEqual(writer.dataKey, Buffer.alloc(dataKey.length));
  const bytes = Buffer.concat(parts);
  assert.equal(bytes.length, writer.bytes);
  return { bytes, entries, dataKey };
}

const fails = (kind: FormatV2ErrorKind) => (err: unknown) => {
  assert.ok(err instanceof FormatV2Error, String(err));
  assert.equal(err.kind, kind, err.message);
  return true;
};

describe('blob', () => {
  const sealer = new BlobSealer();
  const dataKey = Buffer.alloc(32, 9);
  const opener = new BlobOpener(dedupKey);

  it('compresses what shrinks, stores the rest raw, and opens both', () => {
    for (const [plain, shrinks] of [
      [chunks[0]!, true],
      [chunks[1]!, false],
      [chunks[2]!, false],
    ] as const) {
      const id = chunkIdOf(dedupKey, plain);
      const { blob, compressed } = sealer.seal(dataKey, id, plain);
      assert.equal(compressed, shrinks);
      assert.deepEqual(opener.open(dataKey, id, blob), plain);
    }
  });

  it('refuses a flipped byte, another id, another key, and content that is not its id', () => {
    const plain = chunks[0]!;
    const id = chunkIdOf(dedupKey, plain);
    const blob = Buffer.from(sealer.seal(dataKey, id, plain).blob);
    const flipped = Buffer.from(blob);
    flipped[40]! ^= 1;
    assert.throws(() => opener.open(dataKey, id, flipped), fails('blob_altered'));
    assert.throws(() => opener.open(dataKey, chunkIdOf(dedupKey, chunks[3]!), blob), fails('blob_altered'));
    assert.throws(() => opener.open(Buffer.alloc(32, 8), id, blob), fails('blob_altered'));
    assert.throws(() => opener.open(dataKey, id, blob.subarray(0, 30)), fails('corrupt_framing'));
    // Sealed by a holder of the data key under an id that is not its content's keyed hash.
    const forged = sealer.seal(dataKey, id, chunks[3]!).blob;
    assert.throws(() => opener.open(dataKey, id, forged), fails('chunk_mismatch'));
    assert.deepEqual(new BlobOpener().open(dataKey, id, forged), chunks[3]);
  });
});

describe('pack', () => {
  it('writes a pack whose index reads back from its preamble and tail alone', () => {
    const { bytes, entries, dataKey } = pack();
    const tail = bytes.subarray(bytes.length - 4096 > 0 ? bytes.length - 4096 : 0);
    assert.ok(tailBytesOf(tail) < 4096);
    const index = openPackIndex(bytes.subarray(0, preambleBytes), tail, bytes.length, {
      secretKey: team.secretKey,
    });
    assert.deepEqual(index.dataKey, dataKey);
    // Too short a read of the tail is the caller's to extend, not damage.
    assert.throws(
      () =>
        openPackIndex(bytes.subarray(0, preambleBytes), tail.subarray(-20), bytes.length, {
          secretKey: team.secretKey,
        }),
      RangeError,
    );
    assert.deepEqual(index.entries, entries);
    assert.deepEqual(
      [...readPack(bytes, { secretKey: team.secretKey }, dedupKey)].map((c) => c.plain),
      chunks,
    );
    // An agent given the data key reads a blob by its range alone.
    const e = entries[1]!;
    assert.deepEqual(
      new BlobOpener(dedupKey).open(dataKey, e.id, bytes.subarray(e.offset, e.offset + e.length)),
      chunks[1],
    );
  });

  it('names each kind of damage', () => {
    const { bytes, entries } = pack();
    const key = { secretKey: team.secretKey };
    const read = (b: Buffer, k: typeof key = key) => [...readPack(b, k, dedupKey)];
    const flip = (at: number) => {
      const b = Buffer.from(bytes);
      b[at]! ^= 1;
      return b;
    };
    assert.throws(() => read(flip(0)), fails('not_a_pack'));
    assert.throws(() => read(flip(8)), fails('unsupported_version'));
    assert.throws(() => read(flip(12)), fails('header_altered'));
    assert.throws(() => read(flip(60)), fails('header_altered'));
    assert.throws(() => read(bytes, { secretKey: generateTeamKey().secretKey }), fails('wrong_key'));
    assert.throws(() => read(flip(entries[1]!.offset + 100)), fails('blob_altered'));
    assert.throws(() => read(flip(bytes.length - 30)), fails('header_altered'));
    assert.throws(() => read(bytes.subarray(0, bytes.length - 1)), fails('truncated'));
    assert.throws(() => read(bytes.subarray(0, 100)), fails('truncated'));
    const cut = Buffer.concat([bytes.subarray(0, entries[1]!.offset), bytes.subarray(entries[2]!.offset)]);
    assert.throws(() => read(cut), fails('corrupt_framing'));
    // Two blobs of the same length swapped in place: the index still tiles the pack, the ids do not match.
    const twins = pack([Buffer.from('a'.repeat(100)), Buffer.from('b'.repeat(100))]);
    const [a, b] = twins.entries;
    const swapped = Buffer.concat([
      twins.bytes.subarray(0, a!.offset),
      twins.bytes.subarray(b!.offset, b!.offset + b!.length),
      twins.bytes.subarray(a!.offset, a!.offset + a!.length),
      twins.bytes.subarray(b!.offset + b!.length),
    ]);
    assert.equal(a!.length, b!.length);
    assert.throws(() => read(swapped), fails('blob_altered'));
    // A whole index taken from another pack: sealed under another data key, bound to another preamble.
    const other = pack();
    const grafted = Buffer.concat([
      bytes.subarray(0, entries.at(-1)!.offset + entries.at(-1)!.length),
      other.bytes.subarray(other.entries.at(-1)!.offset + other.entries.at(-1)!.length),
    ]);
    assert.throws(() => read(grafted), fails('header_altered'));
  });

  it('names pack objects in one pool per team', () => {
    assert.equal(
      packObjectKey('/backups/', 'team_a', 'ab'.repeat(16)),
      `backups/team_a/packs/ab/${'ab'.repeat(16)}`,
    );
    assert.throws(() => packObjectKey('', 'team_a', '../x'), RangeError);
  });
});

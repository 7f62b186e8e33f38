import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { headerBytes } from '../../format/container-layout.ts';
import { DecryptStream } from '../../format/container-opener.ts';
import { EncryptStream } from '../../format/container-sealer.ts';
import { newDataKey, type KeySource } from '../../format/data-key.ts';
import { generateTeamKey } from '../../format/team-key.ts';

const team = generateTeamKey();

async function seal(plain: Buffer, chunkSize = 64, pieces = 7): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < plain.length; i += pieces) parts.push(plain.subarray(i, i + pieces));
  const enc = new EncryptStream({
    publicKey: team.publicKey,
    dataKey: newDataKey(),
    compression: 'none',
    chunkSize,
  });
  return buffer(Readable.from(parts).pipe(enc));
}

async function open(
  container: Buffer,
  key: KeySource = { secretKey: team.secretKey },
  pieces = 5,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < container.length; i += pieces) parts.push(container.subarray(i, i + pieces));
  const dec = new DecryptStream(key);
  return buffer(Readable.from(parts).pipe(dec));
}

/** Splits a container into its header and framed chunks, to drop, swap or cut them. */
function frames(container: Buffer): { header: Buffer; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  let offset = headerBytes;
  while (offset < container.length) {
    const n = container.readUInt32BE(offset);
    chunks.push(container.subarray(offset, offset + 4 + n));
    offset += 4 + n;
  }
  return { header: container.subarray(0, headerBytes), chunks };
}

async function rejectsAs(container: Buffer, kind: string, key?: KeySource): Promise<void> {
  await assert.rejects(open(container, key), (err: Error & { kind?: string }) => {
    assert.equal(err.kind, kind, err.message);
    return true;
  });
}

describe('container', () => {
  it('round-trips payloads of every size around the chunk boundaries', async () => {
    for (const size of [0, 1, 63, 64, 65, 128, 129, 1000]) {
      const plain = randomBytes(size);
      const container = await seal(plain);
      assert.equal(
        container.length,
        headerBytes + Math.max(1, Math.ceil(size / 64)) * 21 + size,
        `size ${size}`,
      );
      assert.deepEqual(await open(container), plain, `size ${size}`);
    }
  });

  it('detects a truncated stream, at every cut point', async () => {
    const container = await seal(randomBytes(200));
    for (let cut = 0; cut < container.length; cut += 3) {
      await assert.rejects(open(container.subarray(0, cut)), /truncated|corrupt framing/);
    }
    const { header, chunks } = frames(container);
    await rejectsAs(Buffer.concat([header, ...chunks.slice(0, -1)]), 'truncated');
  });

  it('detects a dropped, a reordered and an altered chunk', async () => {
    const { header, chunks } = frames(await seal(randomBytes(64 * 4 + 10)));
    await rejectsAs(Buffer.concat([header, chunks[0]!, chunks[2]!, chunks[3]!, chunks[4]!]), 'chunk_altered');
    await rejectsAs(
      Buffer.concat([header, chunks[0]!, chunks[2]!, chunks[1]!, chunks[3]!, chunks[4]!]),
      'chunk_altered',
    );
    const flipped = Buffer.from(chunks[3]!);
    flipped[10]! ^= 1;
    await rejectsAs(
      Buffer.concat([header, chunks[0]!, chunks[1]!, chunks[2]!, flipped, chunks[4]!]),
      'chunk_altered',
    );
    // The first chunk is bound to the header: altering it is reported as such.
    const first = Buffer.from(chunks[0]!);
    first[first.length - 1]! ^= 1;
    await rejectsAs(Buffer.concat([header, first, ...chunks.slice(1)]), 'header_altered');
  });

  it('detects trailing bytes after the final chunk', async () => {
    const container = await seal(randomBytes(100));
    await rejectsAs(Buffer.concat([container, Buffer.from([0])]), 'trailing_data');
    await rejectsAs(Buffer.concat([container, container.subarray(headerBytes)]), 'trailing_data');
  });

  it('detects an altered header field, each one', async () => {
    const container = await seal(randomBytes(100));
    const expectations: [number, string][] = [
      [0, 'not_a_snapshot'],
      [8, 'unsupported_version'],
      [9, 'header_altered'],
      [10, 'header_altered'],
      [11, 'header_altered'],
      [15, 'header_altered'], // chunk size
      [20, 'wrong_key'], // key id
      [40, 'header_altered'], // sealed data key
      [120, 'header_altered'], // stream header
    ];
    for (const [offset, kind] of expectations) {
      const altered = Buffer.from(container);
      altered[offset]! ^= 2;
      await rejectsAs(altered, kind);
    }
  });

  it('says "wrong key", not "corrupt", for another team key, and opens with the data key alone', async () => {
    const container = await seal(randomBytes(100));
    await rejectsAs(container, 'wrong_key', { secretKey: generateTeamKey().secretKey });
    await rejectsAs(container, 'header_altered', { dataKey: newDataKey() });
  });

  it('refuses a frame length outside the bounds', async () => {
    const container = Buffer.from(await seal(randomBytes(100)));
    container.writeUInt32BE(1 << 30, headerBytes);
    await rejectsAs(container, 'corrupt_framing');
  });
});

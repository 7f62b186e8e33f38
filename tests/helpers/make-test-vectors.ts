// Writes docs/test-vectors/ (see docs/FORMAT.md). Run once when the format changes:
//   node --import tsx tests/helpers/make-test-vectors.ts
// The files are committed; every implementation is tested against the committed copies.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { headerBytes } from '../../format/container-layout.ts';
import { EncryptStream } from '../../format/container-sealer.ts';
import { newDataKey } from '../../format/data-key.ts';
import { fingerprintOf, generateTeamKey, printableSecretKey } from '../../format/team-key.ts';

const dir = fileURLToPath(new URL('../../docs/test-vectors/', import.meta.url));
const team = generateTeamKey();
const other = generateTeamKey();

async function seal(plain: Buffer, chunkSize: number): Promise<Buffer> {
  const enc = new EncryptStream({
    publicKey: team.publicKey,
    dataKey: newDataKey(),
    compression: 'none',
    chunkSize,
  });
  return buffer(Readable.from([plain]).pipe(enc));
}

function chunksOf(container: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = headerBytes; o < container.length;) {
    const n = container.readUInt32BE(o);
    out.push(container.subarray(o, o + 4 + n));
    o += 4 + n;
  }
  return out;
}

const hello = Buffer.from('hello, strackt\n');
const multi = randomBytes(5000);
const helloSealed = await seal(hello, 1024 * 1024);
const multiSealed = await seal(multi, 1024);
const header = multiSealed.subarray(0, headerBytes);
const chunks = chunksOf(multiSealed);
const flipped = Buffer.from(multiSealed);
flipped[headerBytes + 4 + 1021 + 4 + 100]! ^= 1; // inside the second chunk
const alteredHeader = Buffer.from(helloSealed);
alteredHeader[50]! ^= 1; // inside the sealed data key

const files: Record<string, Buffer | string> = {
  'team.key': `${printableSecretKey(team.secretKey)}\n`,
  'team.pub': `${team.publicKey.toString('hex')}\n`,
  'team.fingerprint': `${fingerprintOf(team.publicKey)}\n`,
  'other.key': `${printableSecretKey(other.secretKey)}\n`,
  'hello.txt': hello,
  'hello.strackt': helloSealed,
  'empty.strackt': await seal(Buffer.alloc(0), 1024),
  'multi.strackt': multiSealed,
  'multi.sha256': `${createHash('sha256').update(multi).digest('hex')}\n`,
  'truncated.strackt': Buffer.concat([header, ...chunks.slice(0, -1)]),
  'dropped.strackt': Buffer.concat([header, chunks[0]!, ...chunks.slice(2)]),
  'reordered.strackt': Buffer.concat([header, chunks[0]!, chunks[2]!, chunks[1]!, ...chunks.slice(3)]),
  'flipped.strackt': flipped,
  'trailing.strackt': Buffer.concat([multiSealed, Buffer.from('x')]),
  'altered-header.strackt': alteredHeader,
  'expected-errors.json': `${JSON.stringify(
    {
      'truncated.strackt': 'truncated',
      'dropped.strackt': 'chunk_altered',
      'reordered.strackt': 'chunk_altered',
      'flipped.strackt': 'chunk_altered',
      'trailing.strackt': 'trailing_data',
      'altered-header.strackt': 'header_altered',
      'hello.strackt with other.key': 'wrong_key',
    },
    null,
    2,
  )}\n`,
};
for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
console.log(`wrote ${Object.keys(files).length} files to ${dir}`);

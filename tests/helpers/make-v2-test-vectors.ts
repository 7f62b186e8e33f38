// Writes docs/test-vectors/v2/ (see docs/FORMAT.md, "Version 2"). Run once when the format changes:
//   node --import tsx tests/helpers/make-v2-test-vectors.ts
// Packs are byte-for-byte reproducible: the data keys, secretstream headers and the sealing's
// ephemeral key are fixed here, and only here (writers take them from the system's random source).
// Each pack is checked by the real reader before it is written.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sodium from 'sodium-native';
import { newDataKey } from '../../format/data-key.ts';
import { snapshotObjectKeys } from '../../format/manifest.ts';
import { keyIdOf, parsePrintableSecretKey, publicKeyOf } from '../../format/team-key.ts';
import { zstd } from '../../format/zstd-binding.ts';
import { chunkIdOf, dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { cutPoint } from '../../format/v2/chunker.ts';
import { gear } from '../../format/v2/gear.ts';
import { manifestChunking, sealManifestV2, type ManifestV2 } from '../../format/v2/manifest-v2.ts';
import {
  encodeIndex,
  encodePreamble,
  encodeTrailer,
  packObjectKey,
  type PackEntry,
} from '../../format/v2/pack-layout.ts';
import { readPack } from '../../format/v2/pack-reader.ts';

const extra = sodium as typeof sodium & {
  crypto_box_seed_keypair(pk: Buffer, sk: Buffer, seed: Buffer): void;
  crypto_box_easy(out: Buffer, m: Buffer, nonce: Buffer, pk: Buffer, sk: Buffer): void;
};
const root = fileURLToPath(new URL('../../docs/test-vectors/', import.meta.url));
const dir = join(root, 'v2');
const secretKey = parsePrintableSecretKey(readFileSync(join(root, 'team.key'), 'utf8'));
const publicKey = publicKeyOf(secretKey);
const dedupKey = dedupKeyOf(secretKey);
const fixed = (label: string, n: number) =>
  createHash('sha256').update(`strackt-v2-vector ${label}`).digest().subarray(0, n);

/** crypto_box_seal with a fixed ephemeral key: the ephemeral public key, then crypto_box_easy. */
function sealFixed(message: Buffer, label: string): Buffer {
  const epk = Buffer.alloc(32);
  const esk = Buffer.alloc(32);
  extra.crypto_box_seed_keypair(epk, esk, fixed(`${label} ephemeral`, 32));
  const nonce = Buffer.alloc(24);
  sodium.crypto_generichash(nonce, Buffer.concat([epk, publicKey]));
  const box = Buffer.alloc(message.length + 16);
  extra.crypto_box_easy(box, message, nonce, publicKey, esk);
  return Buffer.concat([epk, box]);
}

/** One secretstream TAG_FINAL message under a fixed header (init_pull sets up what init_push would). */
function streamFixed(key: Buffer, message: Buffer, ad: Buffer, label: string): Buffer {
  const header = fixed(`${label} header`, 24);
  const state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
  sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key);
  const out = Buffer.alloc(message.length + 17);
  const final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  sodium.crypto_secretstream_xchacha20poly1305_push(state, out, message, ad, final);
  return Buffer.concat([header, out]);
}

function packFixed(label: string, chunks: Buffer[]): { bytes: Buffer; entries: PackEntry[] } {
  const dataKey = fixed(`${label} data key`, 32);
  const preamble = encodePreamble(publicKey, newDataKey());
  sealFixed(dataKey, label).copy(preamble, 32);
  const parts = [preamble];
  const entries: PackEntry[] = [];
  let offset = preamble.length;
  chunks.forEach((plain, k) => {
    const id = chunkIdOf(dedupKey, plain);
    const room = Buffer.alloc(plain.length + 64);
    const z = room.subarray(0, plain.length ? zstd().compress(room, plain, 3) : 0);
    const message =
      z.length && z.length < plain.length
        ? Buffer.concat([Buffer.of(1), z])
        : Buffer.concat([Buffer.of(0), plain]);
    const blob = streamFixed(dataKey, message, id, `${label} blob ${k}`);
    entries.push({ id, offset, length: blob.length, rawLength: plain.length });
    parts.push(blob);
    offset += blob.length;
  });
  const index = streamFixed(dataKey, encodeIndex(entries), preamble, `${label} index`);
  const bytes = Buffer.concat([...parts, index, encodeTrailer(index.length)]);
  const read = [...readPack(bytes, { secretKey }, dedupKey)].map((c) => c.plain);
  if (!read.every((p, k) => p.equals(chunks[k]!))) throw new Error(`${label} does not read back`);
  return { bytes, entries };
}

/** The chunking vector's input, by a rule any language rebuilds: SHA-256 of a label and a counter. */
function chunkingInput(bytes: number): Buffer {
  const blocks = Array.from({ length: bytes / 32 }, (_, k) => {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(k);
    return createHash('sha256').update('strackt-chunking-vector-v1').update(counter).digest();
  });
  return Buffer.concat(blocks);
}

const hello = Buffer.from('hello, strackt\n');
const words = Buffer.from('strackt '.repeat(256));
const as = Buffer.from('a'.repeat(100));
const bs = Buffer.from('b'.repeat(100));
const world = Buffer.from('and a second pack\n');
const first = packFixed('hello.pack', [hello, words, as, bs, Buffer.alloc(0)]);
const second = packFixed('second.pack', [world]);
const e = first.entries;
const flipped = Buffer.from(first.bytes);
flipped[e[1]!.offset + 30]! ^= 1;
const alteredPreamble = Buffer.from(first.bytes);
alteredPreamble[40]! ^= 1;
const swapped = Buffer.concat([
  first.bytes.subarray(0, e[2]!.offset),
  first.bytes.subarray(e[3]!.offset, e[3]!.offset + e[3]!.length),
  first.bytes.subarray(e[2]!.offset, e[2]!.offset + e[2]!.length),
  first.bytes.subarray(e[4]!.offset),
]);
if (e[2]!.length !== e[3]!.length) throw new Error('the swapped blobs must have one length');

const input = chunkingInput(6 * 1024 * 1024);
const cuts: { length: number; id: string }[] = [];
for (let at = 0; at < input.length; at += cuts.at(-1)!.length) {
  const length = cutPoint(input, at, input.length);
  cuts.push({ length, id: chunkIdOf(dedupKey, input.subarray(at, at + length)).toString('hex') });
}

// A bucket holding one snapshot whose files draw on both packs, one chunk used twice.
const id = (c: Buffer) => chunkIdOf(dedupKey, c).toString('hex');
const file = (path: string, chunks: Buffer[]) => ({
  path,
  type: 'file' as const,
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  mtime: 1795000000,
  size: Buffer.concat(chunks).length,
  chunks: chunks.map(id),
});
const files = {
  'data/big.txt': [words, as, bs, words],
  'data/empty': [],
  'data/hello.txt': [hello],
  'data/two-packs.txt': [hello, world],
};
const manifest: ManifestV2 = {
  format: 'strackt-snapshot',
  formatVersion: 2,
  snapshotId: 'snap_vector',
  teamId: 'team_vector',
  environmentId: 'env_vector',
  environmentName: 'vector',
  sourceServerId: 'srv_vector',
  createdAt: '2026-12-05T00:00:00.000Z',
  keyId: keyIdOf(publicKey).toString('hex'),
  chunking: manifestChunking,
  services: [{ name: 'app', volumes: ['data'] }],
  volumes: [
    {
      name: 'data',
      entries: 6,
      bytes: Object.values(files).reduce((n, cs) => n + Buffer.concat(cs).length, 0),
    },
  ],
  entries: [
    { path: 'data', type: 'directory', mode: 0o755, uid: 1000, gid: 1000, mtime: 1795000000 },
    ...Object.entries(files).map(([path, chunks]) => file(path, chunks)),
    {
      path: 'data/link',
      type: 'symlink',
      target: 'hello.txt',
      mode: 0o777,
      uid: 1000,
      gid: 1000,
      mtime: 1795000000,
    },
  ],
};
manifest.entries.sort((a, b) => (a.path < b.path ? -1 : 1));
const bucket = (key: string) => join('bucket', key);

const out: Record<string, Buffer | string> = {
  'gear.txt': `${Array.from(gear(), (g) => (g >>> 0).toString(16).padStart(8, '0')).join('\n')}\n`,
  'dedup.key': `${dedupKey.toString('hex')}\n`,
  'cuts.json': `${JSON.stringify({ input: 'sha256("strackt-chunking-vector-v1" || u32be(k)), k = 0..196607', bytes: input.length, cuts }, null, 2)}\n`,
  'hello.pack': first.bytes,
  'hello.pack.json': `${JSON.stringify(
    first.entries.map((x, k) => ({
      id: x.id.toString('hex'),
      offset: x.offset,
      length: x.length,
      rawLength: x.rawLength,
      plain: [hello, words, as, bs, Buffer.alloc(0)][k]!.toString('base64'),
    })),
    null,
    2,
  )}\n`,
  'flipped.pack': flipped,
  'truncated.pack': first.bytes.subarray(0, first.bytes.length - 5),
  'swapped.pack': swapped,
  'altered-preamble.pack': alteredPreamble,
  'expected-errors.json': `${JSON.stringify(
    {
      'flipped.pack': 'blob_altered',
      'truncated.pack': 'truncated',
      'swapped.pack': 'blob_altered',
      'altered-preamble.pack': 'header_altered',
      'hello.pack with other.key': 'wrong_key',
    },
    null,
    2,
  )}\n`,
  [bucket(packObjectKey('', 'team_vector', fixed('pack id 1', 16).toString('hex')))]: first.bytes,
  [bucket(packObjectKey('', 'team_vector', fixed('pack id 2', 16).toString('hex')))]: second.bytes,
  [bucket(snapshotObjectKeys('', 'team_vector', 'env_vector', 'snap_vector').manifest)]: await sealManifestV2(
    manifest,
    publicKey,
    fixed('manifest data key', 32),
  ),
  'bucket.sha256': Object.entries(files)
    .map(([path, chunks]) => `${createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}  ${path}\n`)
    .join(''),
};
rmSync(dir, { recursive: true, force: true });
for (const [name, content] of Object.entries(out)) {
  mkdirSync(dirname(join(dir, name)), { recursive: true });
  writeFileSync(join(dir, name), content);
}
console.log(`wrote ${Object.keys(out).length} files to ${dir}`);

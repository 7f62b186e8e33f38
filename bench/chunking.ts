// Chunker throughput, and how much a backup re-uploads after typical edits, for candidate average
// chunk sizes (docs/FORMAT.md, "Chunking", cites the figures).
//   node --import tsx bench/chunking.ts [--mib N]
// Data is generated from fixed seeds, so runs compare; times on a shared machine are noisy.
import { createCipheriv } from 'node:crypto';
import { parseArgs } from 'node:util';
import { BlobSealer } from '../format/v2/blob.ts';
import { chunkIdOf } from '../format/v2/chunk-id.ts';
import { cutPoint, type ChunkParams } from '../format/v2/chunker.ts';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' } } });
const size = Number(values.mib) * 1024 * 1024;
const MiB = 1024 * 1024;
const key = Buffer.alloc(32, 7);

/** A seeded keystream: AES-CTR over zeros, fast and the same on every run. */
function noise(n: number, seed: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed, 0);
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), iv).update(Buffer.alloc(n));
}

function prng(seed: number) {
  let s = seed | 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

const rand = prng(42);
const words = Array.from({ length: 3000 }, (_, k) =>
  noise(3 + (k % 8), k)
    .toString('base64')
    .slice(0, 3 + (k % 8))
    .toLowerCase(),
);
function text(n: number): Buffer {
  const lines: string[] = [];
  for (let total = 0; total < n;) {
    const line = Array.from({ length: 5 + rand(12) }, () => words[rand(words.length)]).join(' ') + '.\n';
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, n);
}

function log(n: number, from = 0): Buffer {
  const lines: string[] = [];
  for (let total = 0, k = from; total < n; k++) {
    const t = new Date(1795000000000 + k * 37).toISOString();
    const line = `${t} INFO req=${(k * 2654435761) >>> 0} path=/api/${words[k % 3000]} status=${k % 17 ? 200 : 500} ms=${k % 97}\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, n);
}

/** 8 KiB pages: a header with an LSN, rows of mixed text and numbers, free space left zero. */
function page(p: number, lsn: number): Buffer {
  const out = Buffer.alloc(8192);
  out.writeBigUInt64BE(BigInt(lsn), 0);
  out.writeUInt32BE(p, 8);
  const rows = 40 + (p % 20);
  for (let r = 0, at = 8192; r < rows; r++) {
    const row = Buffer.from(
      `${p * 100 + r}|${words[(p * 7 + r) % 3000]} ${words[(p + r * 13) % 3000]}|${lsn}|`,
    );
    at -= row.length + 40;
    row.copy(out, at);
    noise(40, p * 1000 + r + lsn).copy(out, at + row.length);
  }
  return out;
}

function pgFile(n: number): Buffer {
  return Buffer.concat(Array.from({ length: n / 8192 }, (_, p) => page(p, 1)));
}

function rewritePages(file: Buffer, share: number): Buffer {
  const out = Buffer.from(file);
  const pages = file.length / 8192;
  for (let k = 0; k < pages * share; k++) {
    const p = rand(pages);
    page(p, 2 + k).copy(out, p * 8192);
  }
  return out;
}

/** What a table's recent activity does: runs of neighbouring pages rewritten, not pages all over. */
function rewriteRuns(file: Buffer, runs: number, pages: number): Buffer {
  const out = Buffer.from(file);
  for (let k = 0; k < runs; k++) {
    const first = rand(file.length / 8192 - pages);
    for (let p = first; p < first + pages; p++) page(p, 2 + k).copy(out, p * 8192);
  }
  return out;
}

function spliceAll(file: Buffer, cuts: number[], bytes: number): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    parts.push(file.subarray(from, c), noise(bytes, c));
    from = c;
  }
  parts.push(file.subarray(from));
  return Buffer.concat(parts);
}

function cuts(data: Buffer, params: ChunkParams): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length;) {
    const n = cutPoint(data, at, data.length, params);
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

function uploadAfter(before: Buffer, after: Buffer, params: ChunkParams) {
  const held = new Set(cuts(before, params).map((c) => chunkIdOf(key, c).toString('hex')));
  const next = cuts(after, params);
  let fresh = 0;
  for (const c of next) if (!held.has(chunkIdOf(key, c).toString('hex'))) fresh += c.length;
  return { chunks: next.length, mean: after.length / next.length, fresh };
}

const mbps = (bytes: number, ms: number) => ((bytes / MiB) * 1000) / ms;
function best(run: () => void, runs = 3): number {
  let min = Infinity;
  for (let k = 0; k < runs; k++) {
    const t = performance.now();
    run();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

const random = noise(size, 1);
const oneMiB: ChunkParams = { min: 512 * 1024, avg: MiB, max: 8 * MiB };
console.log(
  `chunker alone, ${size / MiB} MiB random: ${mbps(
    size,
    best(() => cuts(random, oneMiB)),
  ).toFixed(0)} MB/s`,
);
console.log(
  `chunk ids (HMAC-SHA-256) of the chunks: ${mbps(
    size,
    best(() => cuts(random, oneMiB).forEach((c) => chunkIdOf(key, c))),
  ).toFixed(0)} MB/s (chunk + hash)`,
);
const sealer = new BlobSealer();
const textData = text(size);
const seal = (d: Buffer) => () => cuts(d, oneMiB).forEach((c) => sealer.seal(key, chunkIdOf(key, c), c));
console.log(
  `chunk + hash + zstd-3 + seal: text ${mbps(size, best(seal(textData), 1)).toFixed(0)} MB/s, random ${mbps(size, best(seal(random), 1)).toFixed(0)} MB/s`,
);

const pg = pgFile(2 * size);
const logData = log(size);
const cases: [string, Buffer, Buffer, number][] = [
  [
    'text, 1 KiB inserted at 20 places',
    textData,
    spliceAll(
      textData,
      Array.from({ length: 20 }, () => rand(size)).sort((a, b) => a - b),
      1024,
    ),
    20 * 1024,
  ],
  [
    'postgres-like, 0.5% of 8 KiB pages rewritten',
    pg,
    rewritePages(pg, 0.005),
    Math.round((pg.length / 8192) * 0.005) * 8192,
  ],
  ['postgres-like, 8 runs of 32 pages rewritten', pg, rewriteRuns(pg, 8, 32), 8 * 32 * 8192],
  ['random, 100 bytes inserted mid-file', random, spliceAll(random, [size / 2], 100), 100],
  ['log, 4 MiB appended', logData, Buffer.concat([logData, log(4 * MiB, 10_000_000)]), 4 * MiB],
];
for (const avg of [512 * 1024, MiB, 2 * MiB]) {
  const params = { min: avg / 2, avg, max: avg * 8 };
  console.log(`\naverage ${avg / 1024} KiB (min ${avg / 2048} KiB, max ${(avg * 8) / MiB} MiB)`);
  for (const [name, before, after, changed] of cases) {
    const r = uploadAfter(before, after, params);
    console.log(
      `  ${name}: ${r.chunks} chunks, mean ${(r.mean / 1024).toFixed(0)} KiB; re-uploads ${(r.fresh / MiB).toFixed(1)} MiB of ${(after.length / MiB).toFixed(0)} (${(r.fresh / changed).toFixed(1)} x the bytes changed)`,
    );
  }
}

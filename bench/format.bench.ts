// Snapshot format throughput and memory against the plain shell pipeline, on the same data in one run.
//   npm run bench:format [-- --size GIB] [-- --runs N]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { size: { type: 'string', default: '1' }, runs: { type: 'string', default: '3' } },
});
const here = fileURLToPath(new URL('.', import.meta.url));
const data = execFileSync('bash', [join(here, 'make-dataset.sh'), values.size!], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const work = join(data, '..', 'work');
mkdirSync(work, { recursive: true });
const volumes = ['binaries', 'pgdata', 'random', 'text'];
const tarBytes = Number(
  execFileSync('bash', ['-c', `tar -C ${data} -cf - ${volumes.join(' ')} | wc -c`], { encoding: 'utf8' }),
);

function shell(script: string): number {
  // Each side starts with no dirty pages left by the other, or writeback would bill one for the other's data.
  execFileSync('sync');
  const t = performance.now();
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${script}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`failed: ${script}`);
  return (performance.now() - t) / 1000;
}

function ours(...args: string[]): { seconds: number; maxRssMiB: number } {
  execFileSync('sync');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'format-worker.ts'), ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const clean = (p: string) => rmSync(p, { recursive: true, force: true });
const runs = Number(values.runs);
const res = {
  baseWrite: [] as number[],
  oursWrite: [] as number[],
  baseRead: [] as number[],
  oursRead: [] as number[],
  rssWrite: 0,
  rssRead: 0,
};

shell(`tar -C ${data} -cf - ${volumes.join(' ')} > /dev/null`); // same warm page cache for both sides
for (let i = 0; i < runs; i++) {
  const base = join(work, 'base.tar.zst');
  const mine = join(work, 'ours.strackt');
  res.baseWrite.push(shell(`tar -C ${data} -cf - ${volumes.join(' ')} | zstd -3 -T0 -q > ${base}`));
  const w = ours('write', data, mine, join(work, 'manifest.json'));
  res.oursWrite.push(w.seconds);
  res.rssWrite = Math.max(res.rssWrite, w.maxRssMiB);

  clean(join(work, 'base-out'));
  mkdirSync(join(work, 'base-out'));
  res.baseRead.push(shell(`zstd -d -q < ${base} | tar -x --numeric-owner -C ${join(work, 'base-out')}`));
  clean(join(work, 'ours-out'));
  const r = ours('read', mine, join(work, 'manifest.json'), join(work, 'ours-out'));
  res.oursRead.push(r.seconds);
  res.rssRead = Math.max(res.rssRead, r.maxRssMiB);
  if (i === 0)
    console.log(`sizes: tar ${tarBytes} B, tar|zstd ${statSync(base).size} B, ours ${statSync(mine).size} B`);
  clean(join(work, 'base-out'));
  clean(join(work, 'ours-out'));
}

const mbps = (s: number) => (tarBytes / 1e6 / s).toFixed(0);
const row = (what: string, base: number, mine: number, rss: number) =>
  console.log(
    `${what.padEnd(34)} ${mbps(base).padStart(6)} MB/s  ${mbps(mine).padStart(6)} MB/s  ${(base / mine).toFixed(2).padStart(5)}x  ${rss.toFixed(0).padStart(5)} MiB`,
  );
console.log(`\n${values.size} GiB mixed data set, median of ${runs} runs (MB = 1e6 bytes of tar stream)`);
console.log(`${''.padEnd(34)} ${'shell'.padStart(11)}  ${'strackt'.padStart(11)}  ratio  peak RSS`);
row('write: tar|zstd -3 -T0 vs ours+enc', median(res.baseWrite), median(res.oursWrite), res.rssWrite);
row('read:  zstd -d|tar -x vs dec+unpack', median(res.baseRead), median(res.oursRead), res.rssRead);

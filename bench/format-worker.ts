// One measured side of bench/format.bench.ts, in its own process so its peak RSS is its own.
//   write ROOT OUT MANIFEST  |  read IN MANIFEST STAGING
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { unpackArchive } from '../format/archive-reader.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/data-key.ts';
import { buildManifest, type Manifest } from '../format/manifest.ts';
import {
  generateTeamKey,
  keyIdOf,
  parsePrintableSecretKey,
  printableSecretKey,
  publicKeyOf,
} from '../format/team-key.ts';

const [mode, a, b, c] = process.argv.slice(2) as [string, string, string, string];
const started = performance.now();

if (mode === 'write') {
  const team = generateTeamKey();
  const volumes = (await readdir(a)).filter((v) => !v.startsWith('.')).sort();
  const { entries, tarBytes } = await writeArchive({
    root: a,
    volumes,
    publicKey: team.publicKey,
    dataKey: newDataKey(),
    sink: createWriteStream(b),
  });
  const manifest = buildManifest(
    {
      snapshotId: 'snap_bench',
      teamId: 'team_bench',
      environmentId: 'env_bench',
      environmentName: 'bench',
      sourceServerId: 'srv_bench',
      createdAt: new Date().toISOString(),
      keyId: keyIdOf(team.publicKey).toString('hex'),
      services: [{ name: 'bench', volumes }],
    },
    { entries, tarBytes },
  );
  await writeFile(c, JSON.stringify({ manifest, key: printableSecretKey(team.secretKey) }));
} else {
  const { manifest, key } = JSON.parse(await readFile(b, 'utf8')) as { manifest: Manifest; key: string };
  const secretKey = parsePrintableSecretKey(key);
  await unpackArchive({
    source: createReadStream(a, { highWaterMark: 1 << 20 }),
    key: { secretKey },
    expectedKeyId: keyIdOf(publicKeyOf(secretKey)),
    manifest,
    staging: c,
  });
}
console.log(
  JSON.stringify({
    seconds: (performance.now() - started) / 1000,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);

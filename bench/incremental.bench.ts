// Format 2's cost per backup as data changes, beside restic on the same data and object store, in one
// run: a first backup (and the plain tar | zstd | upload pipeline), a second of unchanged data, then
// rounds that each change ~5% of the files (some appended, some rewritten in place, the PostgreSQL
// cluster written by pgbench), and what each side stores after them. Started by bench/incremental.sh.
//   npm run bench:incremental [-- --size GIB --rounds N --change FRACTION]
// The capture runs in this process through the agent's own code (agent/dedup-capture.ts) against the
// real API and object store; the agent's memory is measured once backups run it (bench:backup).
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { appendFileSync, openSync, readdirSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ControlPlaneClient } from '../agent/control-plane-client.ts';
import { captureDedupSnapshot } from '../agent/dedup-capture.ts';
import { ProcessRuntime } from '../agent/process-runtime.ts';
import { createLogger } from '../common/log.ts';
import { createServer } from '../db/servers.data.ts';
import { createSnapshot } from '../db/snapshots.data.ts';
import { getTeamPublicKey } from '../db/team-keys.data.ts';
import { createTeam } from '../db/teams.data.ts';
import { stackS3, startControlPlane } from '../tests/helpers/control-plane.ts';
import { freePort, stack, uniqueName } from '../tests/helpers/stack.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '10' },
    change: { type: 'string', default: '0.05' },
  },
});
const rounds = Number(values.rounds);
const change = Number(values.change);
const here = fileURLToPath(new URL('.', import.meta.url));
const data = execFileSync('bash', [join(here, 'make-dataset.sh'), values.size!], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const volumes = ['binaries', 'pgdata', 'random', 'text'];
const s3Env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
  AWS_DEFAULT_REGION: 'us-east-1',
  RESTIC_PASSWORD: 'bench-password',
};

function timed(script: string): number {
  execFileSync('sync');
  const t = performance.now();
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${script}`], { stdio: 'inherit', env: s3Env });
  if (r.status !== 0) throw new Error(`failed: ${script}`);
  return (performance.now() - t) / 1000;
}

const cp = await startControlPlane();
const { team, token } = await createTeam(cp.db, uniqueName('bench'));
const destination = await cp.addDestination(token);
const server = await createServer(cp.db, team.id, 'bench');
const env = await cp.request<{ id: string }>('POST', '/environments', token, {
  name: 'bench',
  serverId: server.server.id,
  // Never started: the capture's hold has nothing to pause, as restic's backup has not.
  services: [
    { name: 'db', command: 'sleep infinity', volumes, stopSignal: 'SIGTERM', stopTimeoutSeconds: 10 },
  ],
});
if (env.status !== 201) throw new Error(`environment: ${JSON.stringify(env.body)}`);
const envId = env.body.id;
const runtime = new ProcessRuntime(join(stack.runDir, 'agent'));
const live = runtime.volumesRoot(envId);
execFileSync('mkdir', ['-p', live]);
execFileSync('cp', ['-a', ...volumes.map((v) => join(data, v)), live]);
const client = new ControlPlaneClient(cp.apiUrl, server.agentToken);
const publicKey = (await getTeamPublicKey(cp.db, team.id))!.publicKey.toString('hex');
const spec = await client.environmentSpec(envId);
const log = createLogger('agent', { level: 'warn' });
const { endpoint } = stack.s3;
const bucket = destination.bucket;
const restic = `s3:${endpoint}/${bucket}/restic`;
execFileSync('restic', ['-q', '-r', restic, 'init'], { env: s3Env, stdio: 'ignore' });

async function strackt() {
  const snapshot = await createSnapshot(cp.db, {
    teamId: team.id,
    environmentId: envId,
    destinationId: destination.destinationId,
    sourceServerId: server.server.id,
    operationId: 'op_bench',
    formatVersion: 2,
    keyId: 'bench',
    objectKeys: (id) => ({
      data: `${id}/none`,
      manifest: `strackt/${team.id}/${envId}/${id}/manifest.json.strackt`,
    }),
  });
  execFileSync('sync');
  const t = performance.now();
  const result = await captureDedupSnapshot(
    { runtime, controlPlane: client, serverId: server.server.id, log },
    spec,
    { snapshotId: snapshot.id, environmentId: envId, teamPublicKey: publicKey },
    () => {},
  );
  return { seconds: (performance.now() - t) / 1000, result };
}

async function storedBytes(prefix: string): Promise<number> {
  let total = 0;
  let token: string | undefined;
  do {
    const page = await stackS3().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) total += object.Size ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return total;
}

/** The same pseudo-random sequence every run: both sides see the same changes. */
let seed = 7;
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const noise = (n: number) =>
  createCipheriv('aes-128-ctr', Buffer.alloc(16, Math.floor(random() * 255)), Buffer.alloc(16)).update(
    Buffer.alloc(n),
  );

function filesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Some appended, some rewritten in place, outside PostgreSQL's folder; pgbench writes inside it. */
async function changeFiles(): Promise<string> {
  const files = volumes.filter((v) => v !== 'pgdata').flatMap((v) => filesOf(join(live, v)));
  const picked = files.filter(() => random() < change);
  for (const [k, file] of picked.entries()) {
    if (k % 2) appendFileSync(file, noise(64 * 1024));
    else {
      const size = statSync(file).size;
      const fd = openSync(file, 'r+');
      writeSync(
        fd,
        noise(Math.min(256 * 1024, size)),
        0,
        Math.min(256 * 1024, size),
        Math.floor(random() * size * 0.9),
      );
      closeSync(fd);
    }
  }
  const bin = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1'], {
    encoding: 'utf8',
  }).trim();
  const pgdata = join(live, 'pgdata');
  const port = await freePort();
  const asPostgres = (args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
  asPostgres([
    `${bin}/pg_ctl`,
    '-D',
    pgdata,
    '-o',
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
    '-w',
    '-l',
    '/dev/null',
    'start',
  ]);
  execFileSync(
    `${bin}/pgbench`,
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-t', '2000', '-c', '2', 'postgres'],
    { stdio: 'ignore' },
  );
  asPostgres([`${bin}/pg_ctl`, '-D', pgdata, '-m', 'fast', '-w', 'stop']);
  return `${picked.length} of ${files.length} files, pgbench 4,000 transactions`;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const line = (name: string, ours: number, theirs: number, extra = '') =>
  console.log(
    `${name.padEnd(34)} ${ours.toFixed(2).padStart(7)} s ${theirs.toFixed(2).padStart(9)} s  ${(theirs / ours).toFixed(2)}x restic${extra}`,
  );

const tarBytes = Number(
  execFileSync('bash', ['-c', `tar -C ${live} -cf - ${volumes.join(' ')} | wc -c`], { encoding: 'utf8' }),
);
console.log(
  `\nincremental backups of ${(tarBytes / 2 ** 30).toFixed(2)} GiB (${data}), format 2 beside restic`,
);
console.log(`${''.padEnd(34)} ${'strackt'.padStart(9)} ${'restic'.padStart(11)}`);
const plain = timed(
  `tar -C ${live} -cf - ${volumes.join(' ')} | zstd -3 -T0 -q | aws s3 cp --only-show-errors --endpoint-url ${endpoint} - s3://${bucket}/plain.tar.zst`,
);
const first = await strackt();
const firstRestic = timed(`cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`);
line(
  'first backup',
  first.seconds,
  firstRestic,
  `, ${(plain / first.seconds).toFixed(2)}x plain (${plain.toFixed(2)} s)`,
);
const held = [first.result.frozenMs];
const second = await strackt();
const secondRestic = timed(`cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`);
line(
  'second backup, nothing changed',
  second.seconds,
  secondRestic,
  `, ${mb(second.result.figures.bytesStored)} sent`,
);
held.push(second.result.frozenMs);
const changed: { ours: number; theirs: number; sent: number }[] = [];
let what = '';
for (let round = 0; round < rounds; round++) {
  what = await changeFiles();
  const ours = await strackt();
  const theirs = timed(`cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`);
  changed.push({ ours: ours.seconds, theirs, sent: ours.result.figures.bytesStored });
  held.push(ours.result.frozenMs);
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
line(
  `after changes, median of ${rounds}`,
  median(changed.map((c) => c.ours)),
  median(changed.map((c) => c.theirs)),
  `, ${mb(median(changed.map((c) => c.sent)))} sent (each round: ${what})`,
);
const ours = await storedBytes(`strackt/${team.id}/`);
const theirs = await storedBytes('restic/');
console.log(
  `stored after ${rounds + 2} backups: strackt ${mb(ours)}, restic ${mb(theirs)} = ${(ours / theirs).toFixed(2)}x restic's repository`,
);
console.log(
  `held still per backup (ms): ${held.join(', ')} (services never started here: the hold's own cost)`,
);
console.log('restore of the latest snapshot: measured once the agent restores format 2');
await cp.stop();

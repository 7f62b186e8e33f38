// Format 2's cost per backup as data changes, beside restic on the same data and object store, in one
// run: a first backup (and the plain tar | zstd | upload pipeline), three of unchanged data, then
// rounds that each change ~5% of the files (some appended, some rewritten in place, the PostgreSQL
// cluster written by pgbench), and what each side stores after them. Started by bench/incremental.sh.
//   npm run bench:incremental [-- --size GIB --rounds N --change FRACTION]
// Backups and the restore run as users start them: through the API, the workflows and a real agent
// process (the control plane writing format 2), whose peak memory is printed.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProcessRuntime } from '../agent/process-runtime.ts';
import { createServer } from '../db/servers.data.ts';
import { createTeam } from '../db/teams.data.ts';
import { stackS3, startControlPlane } from '../tests/helpers/control-plane.ts';
import { startAgent } from '../tests/helpers/processes.ts';
import { freePort, stack, uniqueName } from '../tests/helpers/stack.ts';
import { benchService } from './bench-service.ts';
import { cpuByComponent, type Classify } from './load/cpu-by-component.ts';
import { s3Env, shell, timed } from './bench-shell.ts';
import { resetPeak, rssMiB } from './process-memory.ts';

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

const cp = await startControlPlane({ snapshotFormat: 2 });
const { team, token } = await createTeam(cp.db, uniqueName('bench'));
const destination = await cp.addDestination(token);
const server = await createServer(cp.db, team.id, 'bench');
const dataRoot = join(stack.runDir, 'agent');
const agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
await cp.connected(token, server.server.id);
const port = await freePort();
const service = benchService(port, volumes);
const env = await cp.request<{ id: string }>('POST', '/environments', token, {
  name: 'bench',
  serverId: server.server.id,
  services: [service],
});
if (env.status !== 201) throw new Error(`environment: ${JSON.stringify(env.body)}`);
const envId = env.body.id;
const live = new ProcessRuntime(dataRoot).volumesRoot(envId);
execFileSync('mkdir', ['-p', live]);
await shell(`cp -a ${volumes.map((v) => join(data, v)).join(' ')} ${live}`);
const deploy = await cp.request<{ id: string }>('POST', `/environments/${envId}/deploy`, token);
if (deploy.status !== 202) throw new Error(`deploy refused: ${JSON.stringify(deploy.body)}`);
if ((await cp.finished(token, deploy.body.id)).status !== 'succeeded') throw new Error('deploy failed');
const { endpoint } = stack.s3;
const bucket = destination.bucket;
const restic = `s3:${endpoint}/${bucket}/restic`;
execFileSync('restic', ['-q', '-r', restic, 'init'], { env: s3Env, stdio: 'ignore' });
let agentPeak = 0;
/** The agent's peak in each backup, then the restore's: where the largest is reached. */
const peaks: number[] = [];

/**
 * Where the machine's cores go while a backup runs: each side shares them with the object store.
 * The API and the worker run in this process, and the plain pipeline's processes count in it once
 * they end.
 */
const component =
  (thisProcess: string): Classify =>
  (pid, cmdline) => {
    if (pid === process.pid) return thisProcess;
    if (pid === agent.child.pid) return 'agent';
    if (cmdline.includes('start-dev')) return 'Temporal';
    if (/^(\S*\/)?postgres[: ]/.test(cmdline)) return 'PostgreSQL';
    if (cmdline.includes('versitygw')) return 'versitygw';
    return undefined;
  };
const cpuSeconds = (cores: Map<string, number>, seconds: number) =>
  [...cores]
    .filter(([, c]) => c * seconds >= 0.05)
    .map(([name, c]) => `${name} ${(c * seconds).toFixed(1)}`)
    .join(', ');

/** One backup through the operation and the agent: workflow start to end, and what it stored. */
async function strackt() {
  resetPeak(agent.child.pid!);
  await shell('sync');
  const started = await cp.request<{ id: string; workflowId: string }>(
    'POST',
    `/environments/${envId}/backups`,
    token,
    { destinationId: destination.destinationId },
  );
  if (started.status !== 202) throw new Error(`backup refused: ${JSON.stringify(started.body)}`);
  const op = await cp.finished(token, started.body.id, 3_600_000);
  if (op.status !== 'succeeded') throw new Error(`backup failed: ${JSON.stringify(op)}`);
  peaks.push(rssMiB(agent.child.pid!).peak);
  agentPeak = Math.max(agentPeak, peaks.at(-1)!);
  // The operation reads succeeded a moment before its workflow closes.
  const handle = cp.temporal.workflow.getHandle(started.body.workflowId);
  await handle.result();
  const info = await handle.describe();
  const { body } = await cp.request<{ snapshots: { id: string; sizeBytes: number; frozenMs: number }[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    token,
  );
  return {
    seconds: (info.closeTime!.getTime() - info.startTime.getTime()) / 1000,
    snapshot: body.snapshots[0]!,
  };
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
  const postmaster = readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]!;
  asPostgres([`${bin}/pg_ctl`, '-D', pgdata, '-m', 'fast', '-w', 'stop']);
  // Gone, not only exited: the machine's init may reap it a second or two later, and the CPU of the
  // server and its pgbench backends would then count as init's in the backup's window (measured:
  // 1.6-2.2 core-seconds of "process_api" in a round).
  for (let waited = 0; existsSync(`/proc/${postmaster}`) && waited < 100; waited++) await sleep(100);
  return `${picked.length} of ${files.length} files, pgbench 4,000 transactions`;
}

/**
 * Every file read once before each side's backup of changed data, so both start with the data in
 * the page cache. This machine pages out what was not touched for a minute, and the side that went
 * first read from the disk what the other then found in memory: restic, second, had its fastest
 * round in the first round of every run (the files last read by the first backups).
 */
const warm = () => shell(`find ${live} -type f -exec cat {} + > /dev/null`);

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const line = (name: string, ours: number, theirs: number, extra = '') =>
  console.log(
    `${name.padEnd(34)} ${ours.toFixed(2).padStart(7)} s ${theirs.toFixed(2).padStart(9)} s  ${(theirs / ours).toFixed(2)}x restic${extra}`,
  );

const tarBytes = Number(await shell(`tar -C ${live} -cf - ${volumes.join(' ')} | wc -c`, 'capture'));
console.log(
  `\nincremental backups of ${(tarBytes / 2 ** 30).toFixed(2)} GiB (${data}), format 2 beside restic`,
);
console.log(`${''.padEnd(34)} ${'strackt'.padStart(9)} ${'restic'.padStart(11)}`);
// Written back first, as before each of ours: the data set was just copied in.
await shell('sync');
const plainCpu = cpuByComponent(component('tar, zstd and aws (and the idle control plane)'));
const plain = await timed(
  `tar -C ${live} -cf - ${volumes.join(' ')} | zstd -3 -T0 -q | aws s3 cp --only-show-errors --endpoint-url ${endpoint} - s3://${bucket}/plain.tar.zst`,
);
const plainCpuSpent = plainCpu();
const firstCpu = cpuByComponent(component('control plane (API and worker)'));
const first = await strackt();
const firstCpuSpent = firstCpu();
const firstRestic = await timed(
  `cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`,
);
line(
  'first backup',
  first.seconds,
  firstRestic,
  `, ${(plain / first.seconds).toFixed(2)}x plain (${plain.toFixed(2)} s)`,
);
console.log(`  machine CPU (core-seconds) during the plain pipeline: ${cpuSeconds(plainCpuSpent, plain)}`);
console.log(`  during strackt's first backup: ${cpuSeconds(firstCpuSpent, first.seconds)}`);
const held = [first.snapshot.frozenMs];
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
// Three of each, the median shown: a backup of a second or less moves by a third from one run to the
// next on this machine (the kernel writing back, PostgreSQL's autovacuum after the first backup).
const unchanged: { ours: number; theirs: number; sent: number }[] = [];
for (let k = 0; k < 3; k++) {
  const ours = await strackt();
  const theirs = await timed(`cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`);
  unchanged.push({ ours: ours.seconds, theirs, sent: ours.snapshot.sizeBytes });
  held.push(ours.snapshot.frozenMs);
}
line(
  'unchanged, median of 3',
  median(unchanged.map((u) => u.ours)),
  median(unchanged.map((u) => u.theirs)),
  `, ${mb(median(unchanged.map((u) => u.sent)))} stored`,
);
const changed: { ours: number; theirs: number; sent: number }[] = [];
let what = '';
let cpuOfLast = '';
for (let round = 0; round < rounds; round++) {
  what = await changeFiles();
  await warm();
  const oursCpu = cpuByComponent(component('control plane (API and worker)'));
  const ours = await strackt();
  const oursSpent = oursCpu();
  await warm();
  const theirsCpu = cpuByComponent(component('restic (and the idle control plane)'));
  const theirs = await timed(`cd ${live} && restic -q -r ${restic} backup ${volumes.join(' ')} >/dev/null`);
  const theirsSpent = theirsCpu();
  changed.push({ ours: ours.seconds, theirs, sent: ours.snapshot.sizeBytes });
  held.push(ours.snapshot.frozenMs);
  cpuOfLast = `strackt's: ${cpuSeconds(oursSpent, ours.seconds)}; restic's: ${cpuSeconds(theirsSpent, theirs)}`;
}
line(
  `after changes, median of ${rounds}`,
  median(changed.map((c) => c.ours)),
  median(changed.map((c) => c.theirs)),
  `, ${mb(median(changed.map((c) => c.sent)))} stored (each round: ${what})`,
);
const each = (side: 'ours' | 'theirs') => changed.map((c) => c[side].toFixed(2)).join(', ');
console.log(`  each round (s): strackt ${each('ours')}; restic ${each('theirs')}`);
console.log(`  machine CPU (core-seconds) during the last round, ${cpuOfLast}`);
const ours = await storedBytes(`strackt/${team.id}/`);
const theirs = await storedBytes('restic/');
console.log(
  `stored after ${rounds + 4} backups: strackt ${mb(ours)}, restic ${mb(theirs)} = ${(ours / theirs).toFixed(2)}x restic's repository`,
);
console.log(`held still per backup (ms): ${held.join(', ')} (the environment's service paused while read)`);

// The latest snapshot restored by strackt's restore operation, beside the plain pipeline's download
// and restic's restore of its latest, each into a folder of its own.
const latest = (
  await cp.request<{ snapshots: { id: string }[] }>('GET', `/environments/${envId}/snapshots`, token)
).body.snapshots[0]!.id;
resetPeak(agent.child.pid!);
await shell('sync');
const restoreCpu = cpuByComponent(component('control plane (API and worker)'));
const restore = await cp.request<{ id: string }>('POST', `/environments/${envId}/restores`, token, {
  snapshotId: latest,
  targetServerId: server.server.id,
});
if (restore.status !== 202) throw new Error(`restore refused: ${JSON.stringify(restore.body)}`);
const restored = await cp.finished(token, restore.body.id, 3_600_000);
if (restored.status !== 'succeeded') throw new Error(`restore failed: ${JSON.stringify(restored)}`);
const restoreSpent = restoreCpu();
const stepTimes = restored.steps
  .flatMap((st) => [st.startedAt, st.endedAt])
  .flatMap((t) => (t ? [Date.parse(t)] : []));
const restoreSeconds = (Math.max(...stepTimes) - Math.min(...stepTimes)) / 1000;
peaks.push(rssMiB(agent.child.pid!).peak);
agentPeak = Math.max(agentPeak, peaks.at(-1)!);
const fetchStep = restored.steps.find((st) => st.name === 'fetch, verify and unpack')!;
const ourRestore = (Date.parse(fetchStep.endedAt!) - Date.parse(fetchStep.startedAt!)) / 1000;
const work = join(stack.runDir, 'restores');
const plainUrl = await getSignedUrl(
  stackS3(),
  new GetObjectCommand({ Bucket: bucket, Key: 'plain.tar.zst' }),
  {
    expiresIn: 3600,
  },
);
execFileSync('mkdir', ['-p', join(work, 'plain')]);
// Each restore starts with nothing left to write back, as ours did: otherwise the kernel writes the
// one before's GiB out while the next runs, and the later ones look slower than they are.
await shell('sync');
const plainRestoreCpu = cpuByComponent(component('curl, zstd and tar (and the idle control plane)'));
const plainRestore = await timed(
  `curl -sf '${plainUrl}' | zstd -d -T0 -q | tar -x -C ${join(work, 'plain')}`,
);
const plainRestoreSpent = plainRestoreCpu();
await shell('sync');
const resticRestoreCpu = cpuByComponent(component('restic (and the idle control plane)'));
const resticRestore = await timed(
  `restic -q -r ${restic} restore latest --target ${join(work, 'restic')} >/dev/null`,
);
const resticRestoreSpent = resticRestoreCpu();
line(
  'restore of the latest (fetch, unpack)',
  ourRestore,
  resticRestore,
  `, ${(plainRestore / ourRestore).toFixed(2)}x plain (${plainRestore.toFixed(2)} s, of the first backup's data)`,
);
console.log(
  `  machine CPU (core-seconds) during strackt's whole restore operation (${restoreSeconds.toFixed(2)} s, all its steps): ` +
    `${cpuSeconds(restoreSpent, restoreSeconds)}; the plain pipeline's: ${cpuSeconds(plainRestoreSpent, plainRestore)}; ` +
    `restic's: ${cpuSeconds(resticRestoreSpent, resticRestore)}`,
);
console.log(
  `strackt agent peak RSS over the backups and the restore: ${agentPeak.toFixed(0)} MiB (target <= 250; ` +
    `each backup's then the restore's: ${peaks.map((p) => p.toFixed(0)).join(', ')})`,
);
await agent.kill();
await cp.stop();

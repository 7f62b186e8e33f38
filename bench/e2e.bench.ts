// End-to-end backup or restore of an environment on the real stack (Temporal, versitygw, Postgres,
// control plane, an agent process), side by side in one run with restic and the plain pipeline on the
// same data and the same object store. Started by bench/e2e.sh, which brings the services up.
//   npm run bench:backup [-- --size GIB --runs N]
//   npm run bench:restore [-- --size GIB --runs N]
//   npm run bench:receiver [-- --size GIB --runs N]   backup to a receiver vs the bucket vs restic over SFTP
// One file past 300 lines: the three modes share the stack, the data set, the timing of each side and
// the printing side by side; apart, each would carry a copy of them.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createServer } from '../db/servers.data.ts';
import { createTeam } from '../db/teams.data.ts';
import { stackS3, startControlPlane, type Operation } from '../tests/helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../tests/helpers/processes.ts';
import { startReceiver } from '../tests/helpers/receiver.ts';
import { freePort, stack, uniqueName } from '../tests/helpers/stack.ts';
import { benchService } from './bench-service.ts';
import { s3Env, timed } from './bench-shell.ts';
import { idleRssMiB, resetPeak, rssMiB } from './process-memory.ts';
import { startSftpServer } from './sftp-server.ts';

const { values } = parseArgs({
  options: {
    mode: { type: 'string' },
    size: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
  },
});
const mode = values.mode as 'backup' | 'restore' | 'receiver';
if (!['backup', 'restore', 'receiver'].includes(mode)) throw new Error('--mode backup|restore|receiver');
const runs = Number(values.runs);
const here = fileURLToPath(new URL('.', import.meta.url));
const data = execFileSync('bash', [join(here, 'make-dataset.sh'), values.size!], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const volumes = ['binaries', 'pgdata', 'random', 'text'];
const work = join(stack.runDir, 'bench');

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const peakRssMiB = (program: ProgramRun) => rssMiB(program.child.pid!).peak;
const seconds = (step: Operation['steps'][number]) =>
  (Date.parse(step.endedAt!) - Date.parse(step.startedAt!)) / 1000;

// Version 1's streaming pipeline, whose figures docs/ARCHITECTURE.md keeps; bench:incremental measures
// format 2, the default, beside restic.
const cp = await startControlPlane({ snapshotFormat: 1 });
const { team, token } = await createTeam(cp.db, uniqueName('bench'));
const server = await createServer(cp.db, team.id, 'bench');
const dataRoot = join(stack.runDir, 'agent');
const agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
let beforeRunMiB = 0;
/**
 * Resets the agent's peak RSS, so the next reading is this run's. Not a restart: a freshly started
 * worker's first task waited 1.4 s in Temporal's matching, which no long-running agent pays.
 */
function resetPeakRss() {
  resetPeak(agent.child.pid!);
  beforeRunMiB = peakRssMiB(agent);
}
await cp.connected(token, server.server.id);
const idle = await idleRssMiB(agent.child.pid!, 15);
const idleLine = () =>
  console.log(
    `strackt agent idle RSS (connected, 15 s without work): ${idle.now.toFixed(0)} MiB (target <= 60; ` +
      `${idle.peak.toFixed(0)} MiB at its highest since start)`,
  );
const { destinationId, bucket } = await cp.addDestination(token);
const endpoint = stack.s3.endpoint;
const port = await freePort();
const service = benchService(port, volumes);
const env = await cp.request<{ id: string }>('POST', '/environments', token, {
  name: 'bench',
  serverId: server.server.id,
  services: [service],
});
const envId = env.body.id;
const live = join(dataRoot, 'volumes', envId);
execFileSync('mkdir', ['-p', live]);
execFileSync('cp', ['-a', ...volumes.map((v) => join(data, v)), live]);
const deploy = await cp.request<{ id: string }>('POST', `/environments/${envId}/deploy`, token);
if ((await cp.finished(token, deploy.body.id)).status !== 'succeeded') throw new Error('deploy failed');
const tarBytes = Number(
  execFileSync('bash', ['-c', `tar -C ${live} -cf - ${volumes.join(' ')} | wc -c`], { encoding: 'utf8' }),
);

/** A workflow's description once it has closed: an operation is recorded finished just before. */
async function closedRun(workflowId: string) {
  const handle = cp.temporal.workflow.getHandle(workflowId);
  await handle.result();
  return { handle, info: await handle.describe() };
}

async function backupOnce(
  to = destinationId,
): Promise<{ op: Operation; seconds: number; firstByteSeconds: number }> {
  const started = await cp.request<{ id: string; workflowId: string }>(
    'POST',
    `/environments/${envId}/backups`,
    token,
    { destinationId: to },
  );
  if (started.status !== 202)
    throw new Error(
      `backup refused: ${JSON.stringify(started.body)}\nthe agent's last output:\n${agent.output().slice(-4000)}` +
        (agent.child.exitCode !== null ? `\nthe agent exited with ${agent.child.exitCode}` : ''),
    );
  const op = await cp.finished(token, started.body.id, 3_600_000);
  if (op.status !== 'succeeded') throw new Error(`backup failed: ${JSON.stringify(op)}`);
  const { handle, info } = await closedRun(started.body.workflowId);
  // The capture's result, as Temporal recorded it, says when its first part left for the bucket.
  const history = await handle.fetchHistory();
  const completed = history.events!.find(
    (e) =>
      e.activityTaskCompletedEventAttributes &&
      history.events!.find(
        (s) => s.eventId?.toString() === e.activityTaskCompletedEventAttributes!.scheduledEventId?.toString(),
      )?.activityTaskScheduledEventAttributes?.activityType?.name === 'captureSnapshot',
  );
  const payload = completed!.activityTaskCompletedEventAttributes!.result!.payloads![0]!.data!;
  const capture = JSON.parse(Buffer.from(payload).toString('utf8')) as { firstByteAt: number };
  return {
    op,
    seconds: (info.closeTime!.getTime() - info.startTime.getTime()) / 1000,
    firstByteSeconds: (capture.firstByteAt - info.startTime.getTime()) / 1000,
  };
}

/** The plain pipeline's backup into the bucket as `key`: its seconds. */
const plainBackup = (key: string) =>
  timed(
    `tar -C ${live} -cf - ${volumes.join(' ')} | zstd -3 -T0 -q | aws s3 cp --only-show-errors --endpoint-url ${endpoint} - s3://${bucket}/${key}`,
  );

/** restic's first backup into a new repository under `name` in the bucket: its seconds. */
async function resticBackup(name: string): Promise<number> {
  const repo = `s3:${endpoint}/${bucket}/${name}`;
  execFileSync('restic', ['-q', '-r', repo, 'init'], { env: s3Env, stdio: 'ignore' });
  return timed(`cd ${live} && restic -q -r ${repo} backup ${volumes.join(' ')} >/dev/null`);
}

const rate = (s: number) => `${((tarBytes / s) * 1e-6).toFixed(0)} MB/s`;
const line = (name: string, s: number, extra = '') =>
  console.log(`${name.padEnd(48)} ${s.toFixed(2).padStart(7)} s  ${rate(s).padStart(9)}${extra}`);
console.log(`\n${mode} of ${(tarBytes / 2 ** 30).toFixed(2)} GiB of tar (${data}), median of ${runs}`);

if (mode === 'backup') {
  const ours: number[] = [];
  const firstByte: number[] = [];
  const plain: number[] = [];
  const restic: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    resetPeakRss();
    execFileSync('sync');
    const b = await backupOnce();
    ours.push(b.seconds);
    firstByte.push(b.firstByteSeconds);
    rss = Math.max(rss, peakRssMiB(agent));
    plain.push(await plainBackup(`plain/${i}.tar.zst`));
    restic.push(await resticBackup(`restic-${i}`));
  }
  line('plain: tar | zstd -3 -T0 | aws s3 cp -', median(plain));
  line('restic backup (first, Debian restic)', median(restic));
  line(
    'strackt backup (workflow start to end)',
    median(ours),
    `  = ${(median(plain) / median(ours)).toFixed(2)}x plain, ${(median(restic) / median(ours)).toFixed(2)}x restic`,
  );
  idleLine();
  console.log(
    `strackt agent peak RSS: ${rss.toFixed(0)} MiB (target <= 200; ${beforeRunMiB.toFixed(0)} MiB before the run)`,
  );
  console.log(
    `strackt workflow start to first byte uploaded: ${median(firstByte).toFixed(2)} s (target < 2)`,
  );
} else if (mode === 'receiver') {
  const receiver = await startReceiver(join(stack.runDir, 'receiver'));
  const created = await cp.request<{ destination: { id: string } }>('POST', '/destinations', token, {
    kind: 'receiver',
    name: 'receiver',
    url: receiver.url,
    fingerprint: receiver.fingerprint,
    enrolmentCode: receiver.enrolmentCode,
  });
  const receiverId = created.body.destination.id;
  if (!receiverId) throw new Error(`receiver destination: ${JSON.stringify(created.body)}`);
  const sftp = await startSftpServer(join(stack.runDir, 'sftp'), await freePort());
  const toReceiver: number[] = [];
  const toBucket: number[] = [];
  const restic: number[] = [];
  let agentRss = 0;
  let receiverRss = 0;
  let resticRss = 0;
  let sshdRss = 0;
  for (let i = 0; i < runs; i++) {
    resetPeakRss();
    resetPeak(receiver.program.child.pid!);
    toReceiver.push((await backupOnce(receiverId)).seconds);
    agentRss = Math.max(agentRss, peakRssMiB(agent));
    receiverRss = Math.max(receiverRss, peakRssMiB(receiver.program));
    toBucket.push((await backupOnce()).seconds);

    const repo = sftp.repository(join(work, `restic-sftp-${i}`));
    const resticArgs = ['-q', '-r', repo, '-o', `sftp.command=${sftp.sftpCommand}`];
    execFileSync('mkdir', ['-p', work]);
    execFileSync('restic', [...resticArgs, 'init'], { env: s3Env, stdio: 'ignore' });
    execFileSync('sync');
    const sampled = sampleRss(['sshd']);
    const t = performance.now();
    const rssKiB = await new Promise<number>((resolve, reject) => {
      const child = spawn('/usr/bin/time', ['-f', '%M', 'restic', ...resticArgs, 'backup', ...volumes], {
        cwd: live,
        env: s3Env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) =>
        code === 0 ? resolve(Number(err.trim().split('\n').at(-1))) : reject(new Error(`restic: ${err}`)),
      );
    });
    restic.push((performance.now() - t) / 1000);
    sshdRss = Math.max(sshdRss, await sampled.stop());
    resticRss = Math.max(resticRss, rssKiB / 1024);
  }
  line('restic backup over SFTP (loopback OpenSSH)', median(restic));
  line('strackt backup to the bucket (local versitygw)', median(toBucket));
  line(
    'strackt backup to a receiver (loopback)',
    median(toReceiver),
    `  = ${(median(toBucket) / median(toReceiver)).toFixed(2)}x to the bucket, ${(median(restic) / median(toReceiver)).toFixed(2)}x restic over SFTP`,
  );
  idleLine();
  console.log(
    `peak RSS: strackt agent ${agentRss.toFixed(0)} MiB + receiver ${receiverRss.toFixed(0)} MiB; ` +
      `restic ${resticRss.toFixed(0)} MiB + sshd (all its processes, sampled) ${sshdRss.toFixed(0)} MiB`,
  );
  sftp.stop();
  await receiver.program.kill();
} else {
  await backupOnce();
  const listed = await cp.request<{ snapshots: { id: string }[] }>(
    'GET',
    `/environments/${envId}/snapshots`,
    token,
  );
  const snapshotId = listed.body.snapshots[0]!.id;
  await plainBackup('plain/base.tar.zst');
  const repo = `s3:${endpoint}/${bucket}/restic`;
  await resticBackup('restic');
  const plainUrl = await getSignedUrl(
    stackS3(),
    new GetObjectCommand({ Bucket: bucket, Key: 'plain/base.tar.zst' }),
    { expiresIn: 3600 },
  );

  const whole: number[] = [];
  const steps = new Map<string, number[]>();
  const fetchUnpack: number[] = [];
  const agentUnpack: number[] = [];
  const downtime: number[] = [];
  const plain: number[] = [];
  const restic: number[] = [];
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    resetPeakRss();
    execFileSync('sync');
    const started = await cp.request<{ id: string; workflowId: string }>(
      'POST',
      `/environments/${envId}/restores`,
      token,
      { snapshotId, targetServerId: server.server.id },
    );
    if (started.status !== 202) throw new Error(`restore refused: ${JSON.stringify(started.body)}`);
    const op = await cp.finished(token, started.body.id, 3_600_000);
    if (op.status !== 'succeeded') throw new Error(`restore failed: ${JSON.stringify(op)}`);
    rss = Math.max(rss, peakRssMiB(agent));
    const { info } = await closedRun(started.body.workflowId);
    whole.push((info.closeTime!.getTime() - info.startTime.getTime()) / 1000);
    fetchUnpack.push(seconds(op.steps.find((s) => s.name === 'fetch, verify and unpack')!));
    // This run's line: the agent's output holds every run's.
    const inAgent = agent
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; seconds?: number })
      .findLast((l) => l.msg === 'unpacked into staging');
    if (inAgent?.seconds === undefined) throw new Error('the agent logged no "unpacked into staging" line');
    agentUnpack.push(inAgent.seconds);
    for (const step of op.steps) steps.set(step.name, [...(steps.get(step.name) ?? []), seconds(step)]);
    const detail = await cp.request<{ restore: { downtimeMs: number } }>(
      'GET',
      `/operations/${started.body.id}`,
      token,
    );
    downtime.push(detail.body.restore.downtimeMs / 1000);

    const into = join(work, `plain-${i}`);
    execFileSync('mkdir', ['-p', into]);
    plain.push(await timed(`curl -sf '${plainUrl}' | zstd -d -T0 -q | tar -x -C ${into}`));
    rmSync(into, { recursive: true, force: true });
    const resticInto = join(work, `restic-${i}`);
    restic.push(await timed(`restic -q -r ${repo} restore latest --target ${resticInto} >/dev/null`));
    rmSync(resticInto, { recursive: true, force: true });
  }
  line('plain: curl (presigned GET) | zstd -d | tar -x', median(plain));
  line('restic restore (Debian restic)', median(restic));
  line(
    'strackt fetch, verify and unpack step',
    median(fetchUnpack),
    `  = ${(median(plain) / median(fetchUnpack)).toFixed(2)}x plain, ${(median(restic) / median(fetchUnpack)).toFixed(2)}x restic`,
  );
  line(
    'strackt whole restore (workflow start to end)',
    median(whole),
    `  = ${(median(plain) / median(whole)).toFixed(2)}x plain`,
  );
  line('strackt fetch, verify and unpack, inside the agent', median(agentUnpack));
  console.log(
    `strackt steps (median s): ${[...steps].map(([name, xs]) => `${name} ${median(xs).toFixed(2)}`).join(', ')}`,
  );
  console.log(
    `strackt downtime (services stopped to healthy): ${median(downtime).toFixed(2)} s (target < 5 s + start)`,
  );
  idleLine();
  console.log(
    `strackt agent peak RSS: ${rss.toFixed(0)} MiB (target <= 200; ${beforeRunMiB.toFixed(0)} MiB before the run)`,
  );
}

/** The highest sum of RSS of the processes named, sampled every 50 ms until stop() (MiB). */
function sampleRss(names: string[]): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const out = await new Promise<string>((resolve) =>
        execFile('ps', ['-C', names.join(','), '-o', 'rss='], (_err, stdout) => resolve(stdout ?? '')),
      );
      peak = Math.max(
        peak,
        out.split('\n').reduce((sum, x) => sum + (Number(x) || 0), 0),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak / 1024;
    },
  };
}

await agent.kill();
await cp.stopServices(dataRoot);
await cp.stop();

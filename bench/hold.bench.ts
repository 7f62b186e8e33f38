// How long a backup holds the services still, per file-system snapshot method, beside today's
// freeze for the whole read, on the same data in one run. Needs root (loop devices, mounts).
//   npm run bench:hold [-- --size 1,10]     sizes in GiB; each file system's loop file is sparse
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { makeVolume, planSnapshots } from '../agent/fs-snapshots.ts';
import { holdStill } from '../agent/hold-still.ts';
import { ProcessRuntime } from '../agent/process-runtime.ts';
import { holdWithSnapshots } from '../agent/snapshot-hold.ts';
import { servicesSchema, type EnvironmentSpec } from '../common/environment-spec.ts';
import { createLogger } from '../common/log.ts';
import { writeArchive } from '../format/archive-writer.ts';
import { newDataKey } from '../format/data-key.ts';
import { generateTeamKey } from '../format/team-key.ts';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1' } } });
const sizes = values.size!.split(',').map(Number);
const log = createLogger('bench-hold', { level: 'warn' });
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

// Two volumes, as an application with a database and its files: a third in one, two thirds in the other.
const spec: EnvironmentSpec = {
  environmentId: 'env_holdbench',
  teamId: 'team_bench',
  name: 'hold-bench',
  backupStrategy: 'freeze',
  services: servicesSchema.parse([{ name: 'app', command: 'exec sleep 3600', volumes: ['db', 'files'] }]),
};
const volumes = ['db', 'files'];

/** `gib` GiB of 64 MiB files of which half is random and half zeros: zstd has work, as on real data. */
async function fill(runtime: ProcessRuntime, gib: number) {
  const chunk = Buffer.alloc(64 << 20);
  const files = gib * 16;
  for (let i = 0; i < files; i++) {
    chunk.fill(0);
    pseudoRandom(chunk.subarray(0, 32 << 20), i);
    const volume = i % 3 === 0 ? 'db' : 'files';
    await writeFile(join(runtime.volumePath(spec.environmentId, volume), `part-${i}.bin`), chunk);
  }
  execFileSync('sync');
}

function pseudoRandom(buf: Buffer, seed: number) {
  // An xorshift: gigabytes of incompressible filler without waiting on the kernel's generator.
  let x = (0x2545f491 ^ (seed * 0x9e3779b9)) | 1;
  for (let i = 0; i + 4 <= buf.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
}

/** One backup's hold and read, as the agent does it; what it reports is how long the app was paused. */
async function heldMs(runtime: ProcessRuntime, snapshots: boolean): Promise<{ ms: number; methods: string }> {
  const tree = runtime.fsSnapshotsRoot(spec.environmentId);
  const planned = await planSnapshots((v) => runtime.volumePath(spec.environmentId, v), tree, volumes);
  const plan = snapshots ? planned : planned.map((p) => ({ ...p, method: 'read' as const }));
  const ctx = { runtime, spec, oweRestart: () => Promise.resolve() };
  const held = await holdWithSnapshots(holdStill.freeze, ctx, plan, tree, log);
  await writeArchive({
    root: (volume) => held.rootOf(volume),
    volumes,
    publicKey: generateTeamKey().publicKey,
    dataKey: newDataKey(),
    sink: new Writable({ write: (_chunk, _enc, done) => done() }),
    onSourceRead: () => void held.release(),
  });
  return { ms: await held.release(), methods: Object.values(held.methods).join('+') };
}

const rows: string[] = [];
for (const gib of sizes) {
  for (const kind of ['btrfs', 'xfs', 'ext4'] as const) {
    const dir = mkdtempSync(join(tmpdir(), `strackt-hold-${kind}-`));
    const image = join(dir, 'image');
    sh('truncate', ['-s', `${gib + 2}G`, image]);
    const device = sh('losetup', ['-f', '--show', image]);
    const runtime = new ProcessRuntime(join(dir, 'mnt', 'agent'));
    try {
      const mkfs = {
        btrfs: ['mkfs.btrfs', '-q'],
        xfs: ['mkfs.xfs', '-q', '-m', 'reflink=1'],
        ext4: ['mkfs.ext4', '-q'],
      };
      sh(mkfs[kind][0]!, [...mkfs[kind].slice(1), device]);
      sh('mkdir', [join(dir, 'mnt')]);
      sh('mount', [device, join(dir, 'mnt')]);
      for (const v of volumes) await makeVolume(runtime.volumePath(spec.environmentId, v));
      await runtime.start(spec);
      await fill(runtime, gib);
      const fast = await heldMs(runtime, true);
      const whole = await heldMs(runtime, false);
      rows.push(
        `${gib} GiB  ${kind.padEnd(5)}  ${fast.methods.padEnd(31)} ${String(fast.ms).padStart(7)} ms   freeze for the whole read ${String(whole.ms).padStart(7)} ms`,
      );
      console.log(rows.at(-1));
    } finally {
      await runtime.stop(spec.environmentId).catch(() => undefined);
      execFileSync('umount', [join(dir, 'mnt')], { stdio: 'ignore' });
      execFileSync('losetup', ['-d', device]);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
console.log(
  `\nheld still (services paused), per method, beside freezing them for the whole read:\n${rows.join('\n')}`,
);

import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type LoopFsKind = 'btrfs' | 'xfs' | 'ext4';

const mkfs: Record<LoopFsKind, string[]> = {
  btrfs: ['mkfs.btrfs', '-q'],
  xfs: ['mkfs.xfs', '-q', '-m', 'reflink=1'],
  // ext4 has neither snapshots nor reflinks: the fallback's file system.
  ext4: ['mkfs.ext4', '-q'],
};

export interface LoopFs {
  kind: LoopFsKind;
  mountPoint: string;
  /** Unmounts, detaches the loop device and deletes its file; safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * A real file system of `kind` on a sparse loop file (as root), mounted in a temporary folder.
 * Cleanup always runs to the end: a busy mount is detached lazily, so no loop device stays behind.
 */
export async function makeLoopFs(kind: LoopFsKind, sizeGiB = 2): Promise<LoopFs> {
  const dir = await mkdtemp(join(tmpdir(), `strackt-${kind}-`));
  // mkdtemp's 0700 would keep services running as other users (PostgreSQL) out of their volumes.
  await chmod(dir, 0o755);
  const image = join(dir, 'image');
  const mountPoint = join(dir, 'mnt');
  await run('truncate', ['-s', `${sizeGiB}G`, image]);
  const device = (await run('losetup', ['-f', '--show', image])).stdout.trim();
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]).catch(() => undefined));
    await run('losetup', ['-d', device]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [cmd, ...args] = mkfs[kind];
    await run(cmd!, [...args, device]);
    await mkdir(mountPoint);
    await run('mount', [device, mountPoint]);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { kind, mountPoint, cleanup };
}

/** The loop devices this helper made that are still attached: none once every cleanup ran. */
export async function loopDevicesLeft(): Promise<string[]> {
  const { stdout } = await run('losetup', ['-a']);
  return stdout.split('\n').filter((l) => l.includes('/strackt-'));
}

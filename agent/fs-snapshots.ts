import { execFile } from 'node:child_process';
import { mkdir, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { SnapshotMethod } from '../common/host-tasks.ts';
import { confined } from './confined-path.ts';

const run = promisify(execFile);

const btrfsMagic = 0x9123683e;
// Btrfs gives the root folder of every subvolume this inode number (BTRFS_FIRST_FREE_OBJECTID).
const subvolumeRootInode = 256;

/** How one volume will be taken, and why when it falls back to being read under the hold. */
export interface VolumePlan {
  volume: string;
  method: SnapshotMethod;
  reason?: string;
}

interface Mount {
  target: string;
  device: string;
  fstype: string;
}

/** The mount holding `path`, as findmnt sees it; Btrfs's `[/subvolume]` suffix is not part of the device. */
async function mountOf(path: string): Promise<Mount> {
  const { stdout } = await run('findmnt', ['-n', '-P', '-o', 'TARGET,SOURCE,FSTYPE', '-T', path]);
  const field = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(stdout)?.[1] ?? '';
  return { target: field('TARGET'), device: field('SOURCE').replace(/\[.*\]$/, ''), fstype: field('FSTYPE') };
}

/** Whether FICLONE works in `dir` (XFS made without reflink, for one, refuses it): a probe of a few bytes. */
async function reflinks(dir: string): Promise<boolean> {
  const probe = confined(dir, '.reflink-probe');
  try {
    await writeFile(probe, 'strackt');
    await run('cp', ['--reflink=always', probe, `${probe}-copy`]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
    await rm(`${probe}-copy`, { force: true });
  }
}

/**
 * Per volume, the best snapshot its file system offers, found out before the hold so that none of it
 * costs held time. A snapshot is made in `tree` (on the volumes' file system, beside them): a volume
 * elsewhere (a mount of its own) or on a file system without snapshots is read under the hold.
 */
export async function planSnapshots(
  volumePath: (volume: string) => string,
  tree: string,
  volumes: string[],
): Promise<VolumePlan[]> {
  await mkdir(tree, { recursive: true });
  const treeMount = await mountOf(tree);
  const canReflink = ['xfs', 'btrfs'].includes(treeMount.fstype) && (await reflinks(tree));
  return Promise.all(
    volumes.map(async (volume): Promise<VolumePlan> => {
      const path = volumePath(volume);
      const mount = await mountOf(path);
      if (mount.device !== treeMount.device || mount.fstype !== treeMount.fstype)
        return { volume, method: 'read', reason: `${mount.target} is a file system of its own` };
      if (mount.fstype === 'btrfs' && (await stat(path)).ino === subvolumeRootInode)
        return { volume, method: 'btrfs-subvolume' };
      if (canReflink) return { volume, method: 'reflink' };
      return {
        volume,
        method: 'read',
        reason: `${mount.fstype} at ${mount.target} has no snapshots or reflinks`,
      };
    }),
  );
}

/** Takes one volume's snapshot as `tree/<volume>`: read-only for Btrfs, a reflinked copy otherwise. */
export async function takeSnapshot(method: SnapshotMethod, live: string, tree: string, volume: string) {
  const copy = confined(tree, volume);
  if (method === 'btrfs-subvolume') await run('btrfs', ['subvolume', 'snapshot', '-r', live, copy]);
  // `cp -a` keeps owners, modes, times and xattrs, as tar would read them from the live volume.
  else if (method === 'reflink') await run('cp', ['-a', '--reflink=always', '--', live, copy]);
}

/**
 * Removes what takeSnapshot made of these volumes (whole, half-made, or never made), then `tree`
 * if that left it empty. A read-only subvolume cannot be emptied file by file: it is deleted as one.
 */
export async function removeSnapshots(tree: string, volumes: string[]): Promise<void> {
  for (const volume of volumes) {
    const copy = confined(tree, volume);
    const found = await stat(copy).catch(() => undefined);
    if (!found) continue;
    if (found.ino === subvolumeRootInode && (await statfs(copy)).type === btrfsMagic)
      await run('btrfs', ['subvolume', 'delete', copy]);
    else await rm(copy, { recursive: true, force: true });
  }
  await rmdir(tree).catch(() => undefined);
}

/**
 * Makes a new volume's folder; on Btrfs a subvolume, so that its snapshot is one Btrfs snapshot
 * (a reflinked copy, the next best, costs time per file). An existing folder is left as it is.
 */
export async function makeVolume(path: string): Promise<void> {
  if (await stat(path).catch(() => undefined)) return;
  await mkdir(dirname(path), { recursive: true });
  if ((await statfs(dirname(path))).type !== btrfsMagic) return void (await mkdir(path, { recursive: true }));
  // Two services sharing the volume may both get here: the second finds the first's subvolume.
  await run('btrfs', ['subvolume', 'create', path]).catch(async (err: unknown) => {
    if (!(await stat(path).catch(() => undefined))) throw err;
  });
}

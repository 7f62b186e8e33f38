import type { SnapshotMethod } from '../common/host-tasks.ts';
import type { Logger } from '../common/log.ts';
import { removeSnapshots, takeSnapshot, type VolumePlan } from './fs-snapshots.ts';
import type { Held, HoldContext, HoldStill } from './hold-still.ts';

/** A hold whose volumes were (where their file systems could) snapshotted: what each volume got. */
export interface SnapshotHeld extends Held {
  readonly methods: Record<string, SnapshotMethod>;
}

/**
 * Holds still by `hold`, takes every planned file-system snapshot inside that one hold (so all
 * volumes are one point in time), and lets the services go the moment they exist; the capture then
 * reads the snapshots. A volume whose snapshot fails is read live instead, and then the hold lasts
 * until the read is done, as it does without snapshots. `tree` is where the snapshots are made;
 * the caller's journal has noted the planned volumes before this runs, so a restarted agent
 * removes whatever an agent killed from here on left. Release deletes the snapshots.
 */
export async function holdWithSnapshots(
  hold: HoldStill,
  ctx: HoldContext,
  plan: VolumePlan[],
  tree: string,
  log: Logger,
): Promise<SnapshotHeld> {
  const live = ctx.runtime.volumesRoot(ctx.spec.environmentId);
  const snapshotted = plan.filter((p) => p.method !== 'read').map((p) => p.volume);
  const held = await hold(ctx);
  const methods: Record<string, SnapshotMethod> = {};
  try {
    for (const { volume, method } of plan) {
      methods[volume] = method;
      if (method === 'read') continue;
      await takeSnapshot(method, ctx.runtime.volumePath(ctx.spec.environmentId, volume), tree, volume).catch(
        async (err: unknown) => {
          log.warn(
            { volume, method, err },
            'the file-system snapshot failed: the volume is read under the hold',
          );
          methods[volume] = 'read';
          await removeSnapshots(tree, [volume]);
        },
      );
    }
  } catch (err) {
    await held.release();
    await removeSnapshots(tree, snapshotted);
    throw err;
  }
  const readLive = Object.values(methods).includes('read');
  // Every volume is in a snapshot: nothing the services do from now on reaches the capture.
  if (!readLive) await held.release();
  let released: Promise<number> | undefined;
  return {
    methods,
    since: held.since,
    rootOf: (volume) => (methods[volume] === 'read' ? live : tree),
    release: () =>
      (released ??= held.release().then(async (heldMs) => {
        // Not the capture's failure: the next capture of the environment removes what is left first.
        await removeSnapshots(tree, snapshotted).catch((err: unknown) =>
          log.error({ err, tree }, 'could not remove the file-system snapshots'),
        );
        return heldMs;
      })),
  };
}

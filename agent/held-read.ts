import type { EnvironmentSpec } from '../common/environment-spec.ts';
import type { SnapshotMethod } from '../common/host-tasks.ts';
import type { Logger } from '../common/log.ts';
import { runPostHooks, runPreHooks } from './backup-hooks.ts';
import { CaptureJournal, type CaptureDebt } from './capture-journal.ts';
import { makeVolume, planSnapshots, removeSnapshots } from './fs-snapshots.ts';
import { holdStill, strategyOf } from './hold-still.ts';
import type { Runtime } from './runtime.ts';
import { holdWithSnapshots } from './snapshot-hold.ts';

/** Every volume of the environment, sorted, its folder made: the reader is given every name, written to yet or not. */
async function volumesOf(runtime: Runtime, spec: EnvironmentSpec): Promise<string[]> {
  const volumes = [...new Set(spec.services.flatMap((s) => s.volumes))].sort();
  // volumePath refuses a name that is not a plain one: readers are given these names, as they are.
  for (const volume of volumes) await makeVolume(runtime.volumePath(spec.environmentId, volume));
  return volumes;
}

/** What a reader of the held volumes is given. */
export interface HeldSources {
  volumes: string[];
  /** Where a volume's files are read: its file-system snapshot, or the live folder under the hold. */
  rootOf: (volume: string) => string;
  /** To call once nothing more will be read: the environment is let go at once. */
  release: () => void;
}

export interface HeldRead<T> {
  result: T;
  volumes: string[];
  /** When the hold began: the snapshot's point in time. */
  since: number;
  heldMs: number;
  methods: Record<string, SnapshotMethod>;
}

/**
 * One point in time of every volume of the environment, read by `read`: pre hooks, the environment
 * held still by its strategy (hold-still.ts) and its volumes snapshotted inside that hold where their
 * file systems can (snapshot-hold.ts), released as soon as the snapshots exist or else the moment the
 * reader is done, post hooks. The release and the post hooks always happen, whatever fails, and a
 * journal on disk makes a restarted agent do them if this one dies.
 */
export async function readHeld<T>(
  runtime: Runtime,
  spec: EnvironmentSpec,
  snapshotId: string,
  log: Logger,
  read: (sources: HeldSources) => Promise<T>,
): Promise<HeldRead<T>> {
  const volumes = await volumesOf(runtime, spec);
  const journal = new CaptureJournal(runtime.capturesRoot());
  const tree = runtime.fsSnapshotsRoot(spec.environmentId);
  // What an earlier capture could not remove goes first: its snapshots would stand in the way.
  await removeSnapshots(tree, volumes);
  const plan = await planSnapshots((v) => runtime.volumePath(spec.environmentId, v), tree, volumes);
  let debt: CaptureDebt = {
    environmentId: spec.environmentId,
    snapshotId,
    restart: false,
    postHooks: spec.services.some((s) => s.backupHooks?.post),
    snapshots: plan.filter((p) => p.method !== 'read').map((p) => p.volume),
  };
  const strategy = strategyOf(spec);
  log.info({ strategy, volumes, plan }, 'capturing');

  let held: Awaited<ReturnType<typeof holdWithSnapshots>> | undefined;
  let outcome: { result: T } | undefined;
  let captureFailure: unknown;
  await journal.note(debt);
  try {
    await runPreHooks(runtime, spec);
    const oweRestart = (restart: boolean) => journal.note((debt = { ...debt, restart }));
    const holding = await holdWithSnapshots(
      holdStill[strategy],
      { runtime, spec, oweRestart },
      plan,
      tree,
      log,
    );
    held = holding;
    outcome = {
      result: await read({
        volumes,
        rootOf: (v) => holding.rootOf(v),
        release: () => void holding.release(),
      }),
    };
  } catch (err) {
    captureFailure = err;
  }
  const heldMs = (await held?.release()) ?? 0;
  const postFailure = await runPostHooks(runtime, spec).then(
    () => undefined,
    (err: unknown) => err,
  );
  await journal.settle(spec.environmentId);
  // After a failed capture its own error is the one to report, not a post hook's.
  if (captureFailure || !outcome || !held) throw captureFailure;
  if (postFailure) throw postFailure;
  return { result: outcome.result, volumes, since: held.since, heldMs, methods: held.methods };
}

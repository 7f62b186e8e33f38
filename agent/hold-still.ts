import type { BackupStrategy, EnvironmentSpec } from '../common/environment-spec.ts';
import type { Runtime } from './runtime.ts';

export interface HoldContext {
  runtime: Runtime;
  spec: EnvironmentSpec;
  /** Notes on disk whether a restarted agent must start the services, should this one die meanwhile. */
  oweRestart(restart: boolean): Promise<void>;
}

/** An environment held still: what the capture reads, and how it lets go. */
export interface Held {
  /** The folder holding the volume's folder that the capture reads: the live volumes, or a file-system snapshot. */
  rootOf(volume: string): string;
  /** Epoch ms from which the data stood still: the snapshot's point in time. */
  readonly since: number;
  /**
   * Ends the hold once the volumes are read, or the capture failed; the same promise however often
   * it is called. Resolves with how long the services themselves were held (ms), the figure each
   * snapshot records. With file-system snapshots (snapshot-hold.ts) the services were let go before
   * the Held was returned, and this deletes the snapshots.
   */
  release(): Promise<number>;
}

/** Holds the environment still after its pre hooks; whatever it started is undone by Held.release. */
export type HoldStill = (ctx: HoldContext) => Promise<Held>;

function heldUntil(volumesRoot: string, letGo: () => Promise<void>): Held {
  const since = Date.now();
  let released: Promise<number> | undefined;
  return {
    rootOf: () => volumesRoot,
    since,
    release: () => (released ??= letGo().then(() => Date.now() - since)),
  };
}

/** SIGSTOP on every process group while tar reads, SIGCONT the moment it is done. */
const freeze: HoldStill = async ({ runtime, spec }) => {
  await runtime.freeze(spec.environmentId);
  return heldUntil(runtime.volumesRoot(spec.environmentId), () => runtime.thaw(spec.environmentId));
};

/** The services stopped for the capture; started again only if they were running. */
const stop: HoldStill = async ({ runtime, spec, oweRestart }) => {
  const restart = (await runtime.status(spec.environmentId)).some((s) => s.running);
  await oweRestart(restart);
  await runtime.stop(spec.environmentId);
  return heldUntil(runtime.volumesRoot(spec.environmentId), async () => {
    if (!restart) return;
    await runtime.start(spec);
    await oweRestart(false);
  });
};

/** Hooks only: the services were never held, so nothing is recorded as held. */
const none: HoldStill = ({ runtime, spec }) =>
  Promise.resolve({
    rootOf: () => runtime.volumesRoot(spec.environmentId),
    since: Date.now(),
    release: () => Promise.resolve(0),
  });

/** One way of holding still per backupStrategy; snapshot-hold.ts shortens any of them to the snapshots' making. */
export const holdStill: Record<BackupStrategy, HoldStill> = { freeze, stop, none };

/** The environment's backupStrategy; `freeze` for a spec that names none. */
export const strategyOf = (spec: EnvironmentSpec): BackupStrategy => spec.backupStrategy ?? 'freeze';

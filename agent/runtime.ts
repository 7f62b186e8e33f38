import type { EnvironmentSpec, ServiceSpec } from '../common/environment-spec.ts';

export interface ServiceState {
  service: string;
  running: boolean;
  pid?: number;
}

export interface HealthProgress {
  healthy: string[];
  waiting: Record<string, string>;
}

/**
 * What an agent needs from whatever runs services on its host. Kept this small on purpose so a
 * container runtime can implement it later beside the process runtime. Every path it gives for an id
 * or a name is built with `confined` (confined-path.ts): restores and captures build on them unchecked.
 */
export interface Runtime {
  /** Starts every service, first stopping whatever of the environment still runs (a redeploy). */
  start(spec: EnvironmentSpec): Promise<void>;
  stop(environmentId: string): Promise<void>;
  status(environmentId: string): Promise<ServiceState[]>;
  waitHealthy(spec: EnvironmentSpec, onProgress: (p: HealthProgress) => void): Promise<void>;
  /** Pauses every process of the environment (SIGSTOP) so its volumes stop changing. */
  freeze(environmentId: string): Promise<void>;
  thaw(environmentId: string): Promise<void>;
  /** At agent start: a previous agent killed mid-capture must not leave services paused. */
  thawAll(): Promise<void>;
  /** The folder holding one folder per volume of the environment. */
  volumesRoot(environmentId: string): string;
  volumePath(environmentId: string, volume: string): string;
  /**
   * Where a capture makes the file-system snapshots of the environment's volumes: beside them, on
   * their file system, as Btrfs snapshots and reflinks must be.
   */
  fsSnapshotsRoot(environmentId: string): string;
  /** Where restores of the environment stage their data: on the volumes' filesystem, for renames. */
  restoresRoot(environmentId: string): string;
  /** Where a backup notes what it must undo (thaw, start, post hooks) should the agent die mid-way. */
  capturesRoot(): string;
  /** Runs a command as the service would run (its user, variables, folder); fails with its output's tail. */
  runHook(
    spec: EnvironmentSpec,
    service: ServiceSpec,
    command: string,
    timeoutSeconds: number,
  ): Promise<void>;
}

export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(
    readonly type:
      'ServiceFailedToStart' | 'ServiceExited' | 'ServiceUnhealthy' | 'UnknownUser' | 'HookFailed',
    message: string,
  ) {
    super(message);
  }
}

import { spawn } from 'node:child_process';
import { chown, mkdir, open, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentSpec, ServiceSpec } from '../common/environment-spec.ts';
import { volumeVariable } from '../common/names.ts';
import { confined } from './confined-path.ts';
import { makeVolume } from './fs-snapshots.ts';
import { probe } from './health-checks.ts';
import { groupAlive, processStartTime, signalGroup, stopGroup } from './process-groups.ts';
import { RuntimeError, type HealthProgress, type Runtime, type ServiceState } from './runtime.ts';
import { lookupUser } from './unix-users.ts';
import { redactValues } from './redact.ts';
import { isoTime } from '../common/iso-time.ts';

/** What survives an agent restart: enough to find and stop a service without its spec. */
interface ServiceRecord {
  service: string;
  pgid: number;
  startTime: string;
  stopSignal: NodeJS.Signals;
  stopTimeoutSeconds: number;
  startedAt: string;
}

const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Runs services as plain process groups under the agent. Each service gets its own session
 * (detached) so it outlives an agent restart and can be stopped as a whole group, children included.
 */
export class ProcessRuntime implements Runtime {
  /** Exit statuses of services this agent process spawned, to fail fast instead of waiting out a timeout. */
  private readonly exits = new Map<number, string>();

  constructor(private readonly dataRoot: string) {}

  volumesRoot(environmentId: string): string {
    return confined(this.dataRoot, 'volumes', environmentId);
  }

  fsSnapshotsRoot(environmentId: string): string {
    // Environment ids start with `env_`: no environment's volumes can be named `.snapshots`.
    return confined(this.dataRoot, 'volumes', '.snapshots', environmentId);
  }

  volumePath(environmentId: string, volume: string): string {
    return confined(this.dataRoot, 'volumes', environmentId, volume);
  }

  restoresRoot(environmentId: string): string {
    return confined(this.dataRoot, 'restores', environmentId);
  }

  capturesRoot(): string {
    return confined(this.dataRoot, 'captures');
  }

  private async signalAll(environmentId: string, signal: NodeJS.Signals): Promise<void> {
    for (const record of await this.records(environmentId)) {
      if (await this.isRunning(record)) signalGroup(record.pgid, signal);
    }
  }

  freeze(environmentId: string): Promise<void> {
    return this.signalAll(environmentId, 'SIGSTOP');
  }

  thaw(environmentId: string): Promise<void> {
    return this.signalAll(environmentId, 'SIGCONT');
  }

  async thawAll(): Promise<void> {
    const environments = await readdir(confined(this.dataRoot, 'run')).catch(() => [] as string[]);
    for (const environmentId of environments) await this.thaw(environmentId);
  }

  private runDir(environmentId: string): string {
    return confined(this.dataRoot, 'run', environmentId);
  }

  /** The record of a service started, by its file name in the run folder. */
  private runFile(environmentId: string, file: string): string {
    return confined(this.dataRoot, 'run', environmentId, file);
  }

  private logPath(environmentId: string, service: string): string {
    return confined(this.dataRoot, 'logs', environmentId, `${service}.log`);
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    await this.stop(spec.environmentId);
    await mkdir(this.runDir(spec.environmentId), { recursive: true });
    await mkdir(confined(this.dataRoot, 'logs', spec.environmentId), { recursive: true });
    for (const service of spec.services) {
      await this.startService(spec, service);
    }
  }

  private async userOf(service: ServiceSpec) {
    const user = service.user === undefined ? undefined : await lookupUser(service.user);
    if (service.user !== undefined && !user) {
      throw new RuntimeError(
        'UnknownUser',
        `service ${service.name}: no Unix user "${service.user}" on this server`,
      );
    }
    return user;
  }

  private workingDir(spec: EnvironmentSpec, service: ServiceSpec): string {
    return service.workingDir ?? confined(this.dataRoot, 'environments', spec.environmentId);
  }

  async runHook(spec: EnvironmentSpec, service: ServiceSpec, command: string, timeoutSeconds: number) {
    const user = await this.userOf(service);
    const cwd = this.workingDir(spec, service);
    await mkdir(cwd, { recursive: true });
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env: this.serviceEnv(spec, service, user?.home),
      detached: true, // its own group, so a timeout kills what it started too
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user && { uid: user.uid, gid: user.gid }),
    });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-2000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), timeoutSeconds * 1000);
    const result = await new Promise<string | undefined>((resolve) => {
      child.once('error', (e) => resolve(`could not start: ${e.message}`));
      child.once('exit', (code, signal) =>
        resolve(
          code === 0
            ? undefined
            : signal === 'SIGKILL'
              ? `timed out after ${timeoutSeconds} s`
              : `exited with ${signal ?? `code ${code}`}`,
        ),
      );
    });
    clearTimeout(timer);
    if (result) {
      // The output leaves this server (history, API, webhooks): the environment's variable values are blanked.
      const shown = redactValues(
        output.trim(),
        spec.services.flatMap((s) => Object.values(s.env ?? {})),
      );
      throw new RuntimeError(
        'HookFailed',
        `backup hook of service ${service.name} ${result}${shown ? `: ${shown}` : ''}`,
      );
    }
  }

  /** A health check runs as the service does: its user, its working directory, its variables. */
  private async probeAsService(spec: EnvironmentSpec, service: ServiceSpec): Promise<string | undefined> {
    const user = await this.userOf(service);
    return probe(service.healthCheck!, {
      env: this.serviceEnv(spec, service, user?.home),
      cwd: this.workingDir(spec, service),
      ...(user && { uid: user.uid, gid: user.gid }),
    });
  }

  private async startService(spec: EnvironmentSpec, service: ServiceSpec): Promise<void> {
    const user = await this.userOf(service);
    const env = this.serviceEnv(spec, service, user?.home);
    for (const volume of service.volumes) {
      const path = this.volumePath(spec.environmentId, volume);
      await makeVolume(path);
      if (user) await chown(path, user.uid, user.gid);
    }
    const cwd = this.workingDir(spec, service);
    await mkdir(cwd, { recursive: true });

    const log = await open(this.logPath(spec.environmentId, service.name), 'a');
    try {
      // The service's environment is built from scratch: it must never inherit the agent's own secrets.
      const child = spawn('/bin/sh', ['-c', service.command], {
        cwd,
        env,
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
        ...(user && { uid: user.uid, gid: user.gid }),
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (e) =>
          reject(
            new RuntimeError('ServiceFailedToStart', `service ${service.name} failed to start: ${e.message}`),
          ),
        );
      });
      const pgid = child.pid!;
      child.once('exit', (code, signal) =>
        this.exits.set(pgid, signal ? `signal ${signal}` : `code ${code}`),
      );
      child.unref();
      const record: ServiceRecord = {
        service: service.name,
        pgid,
        startTime: (await processStartTime(pgid)) ?? '',
        stopSignal: service.stopSignal,
        stopTimeoutSeconds: service.stopTimeoutSeconds,
        startedAt: isoTime(Date.now()),
      };
      const file = this.runFile(spec.environmentId, `${service.name}.json`);
      await writeFile(`${file}.tmp`, JSON.stringify(record));
      await rename(`${file}.tmp`, file);
    } finally {
      await log.close();
    }
  }

  private serviceEnv(spec: EnvironmentSpec, service: ServiceSpec, home = '/'): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: defaultPath,
      HOME: home,
      LANG: 'C.UTF-8',
      ...service.env,
      STRACKT_ENVIRONMENT: spec.name,
      STRACKT_SERVICE: service.name,
    };
    for (const volume of service.volumes)
      env[volumeVariable(volume)] = this.volumePath(spec.environmentId, volume);
    return env;
  }

  private async records(environmentId: string): Promise<ServiceRecord[]> {
    // Outside the try: a refused id must fail the step, not read as an environment with nothing running.
    const dir = this.runDir(environmentId);
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const records = await Promise.all(
      files.map(
        async (f) => JSON.parse(await readFile(this.runFile(environmentId, f), 'utf8')) as ServiceRecord,
      ),
    );
    // ISO times sort as strings; localeCompare would load ICU's collation data (3 MiB of RSS) for nothing.
    return records.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  }

  /** A recorded group is ours while its leader is the process we started, or while the group outlives it. */
  private async isRunning(record: ServiceRecord): Promise<boolean> {
    const startTime = await processStartTime(record.pgid);
    if (startTime !== undefined && startTime !== record.startTime) return false;
    return groupAlive(record.pgid);
  }

  async stop(environmentId: string): Promise<void> {
    // Reverse start order: dependants (an app) stop before what they depend on (its database).
    for (const record of (await this.records(environmentId)).reverse()) {
      if (await this.isRunning(record)) {
        await stopGroup(record.pgid, record.stopSignal, record.stopTimeoutSeconds * 1000);
      }
      await rm(this.runFile(environmentId, `${record.service}.json`), { force: true });
    }
  }

  async status(environmentId: string): Promise<ServiceState[]> {
    return Promise.all(
      (await this.records(environmentId)).map(async (r) => ({
        service: r.service,
        running: await this.isRunning(r),
        pid: r.pgid,
      })),
    );
  }

  async waitHealthy(spec: EnvironmentSpec, onProgress: (p: HealthProgress) => void): Promise<void> {
    const records = new Map((await this.records(spec.environmentId)).map((r) => [r.service, r]));
    const started = Date.now();
    const healthy = new Set<string>();
    const waiting: Record<string, string> = {};
    for (;;) {
      for (const service of spec.services) {
        if (healthy.has(service.name)) continue;
        const record = records.get(service.name);
        if (!record || !(await this.isRunning(record))) {
          const how = record ? this.exits.get(record.pgid) : undefined;
          throw new RuntimeError(
            'ServiceExited',
            `service ${service.name} exited${how ? ` with ${how}` : ''} before becoming healthy; its output is in ${this.logPath(spec.environmentId, service.name)}`,
          );
        }
        const reason = service.healthCheck ? await this.probeAsService(spec, service) : undefined;
        if (reason === undefined) {
          healthy.add(service.name);
          delete waiting[service.name];
        } else if (Date.now() - started > service.healthTimeoutSeconds * 1000) {
          throw new RuntimeError(
            'ServiceUnhealthy',
            `service ${service.name} not healthy after ${service.healthTimeoutSeconds} s: ${reason}`,
          );
        } else {
          waiting[service.name] = reason;
        }
      }
      onProgress({ healthy: [...healthy], waiting: { ...waiting } });
      if (healthy.size === spec.services.length) return;
      await sleep(250);
    }
  }
}

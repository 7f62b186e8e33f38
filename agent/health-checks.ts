import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { HealthCheck } from '../common/environment-spec.ts';
import { httpRequest } from './http-request.ts';

const probeTimeoutMs = 5_000;

/** How a command check runs: as the service it checks. */
export interface ProbeContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  uid?: number;
  gid?: number;
}

/** One probe: resolves to undefined when healthy, or to the reason it is not. */
export async function probe(check: HealthCheck, as: ProbeContext): Promise<string | undefined> {
  switch (check.type) {
    case 'http':
      try {
        const res = await httpRequest(new URL(`http://127.0.0.1:${check.port}${check.path}`), {
          signal: AbortSignal.timeout(probeTimeoutMs),
          statusOnly: true,
        });
        return res.status < 400 ? undefined : `HTTP ${res.status} from port ${check.port}${check.path}`;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        return `HTTP probe of port ${check.port}${check.path} failed: ${e.code ?? e.message}`;
      }
    case 'tcp':
      return new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: check.port, timeout: probeTimeoutMs });
        socket.once('connect', () => (socket.destroy(), resolve(undefined)));
        socket.once('timeout', () => (socket.destroy(), resolve(`TCP port ${check.port}: timed out`)));
        socket.once('error', (e: NodeJS.ErrnoException) =>
          resolve(`TCP port ${check.port}: ${e.code ?? e.message}`),
        );
      });
    case 'command':
      return new Promise((resolve) => {
        const child = spawn('/bin/sh', ['-c', check.command], {
          env: as.env,
          cwd: as.cwd,
          ...(as.uid !== undefined && { uid: as.uid, gid: as.gid }),
          stdio: 'ignore',
          timeout: probeTimeoutMs,
        });
        child.once('error', (e) => resolve(`health command failed to start: ${e.message}`));
        child.once('exit', (code, signal) =>
          resolve(code === 0 ? undefined : `health command exited with ${signal ?? `code ${code}`}`),
        );
      });
  }
}

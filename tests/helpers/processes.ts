import { serve, type ServerType } from '@hono/node-server';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import type { createApp } from '../../api/app.ts';
import { repoRoot } from './stack.ts';

/**
 * Serves an app on a free port of `hostname` (loopback unless an agent in a network namespace must
 * reach it), for the agent processes that must reach it over HTTP.
 */
export async function serveApp(
  app: ReturnType<typeof createApp>,
  hostname = '127.0.0.1',
): Promise<{ url: string; close: () => Promise<void> }> {
  // Handlers run on after their client went away (a killed agent's last heartbeat): close() waits for
  // them, so no relay to Temporal is in flight when a test then closes its Temporal connection (the
  // SDK retries a call cut by the close on the closed channel, and that throws from a timer).
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const fetch: typeof app.fetch = async (...args) => {
    inFlight++;
    try {
      return await app.fetch(...args);
    } finally {
      if (--inFlight === 0) idle?.();
    }
  };
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch, hostname, port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://${hostname}:${port}`,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Held long polls end with their connections (their abort signal fires).
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      if (inFlight > 0) await new Promise<void>((r) => (idle = r));
      await closed;
    },
  };
}

export interface ProgramRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  kill: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/**
 * Runs one of the project's programs as a real process: a TypeScript entry point under the repo
 * (through tsx), or a built command as is (under the repo, or an absolute path).
 */
/** Programs still running: a test or benchmark that dies of an uncaught error must not leave them behind. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function runProgram(entry: string, env: Record<string, string>, wrapper: string[] = []): ProgramRun {
  const [program, programArgs] = entry.endsWith('.ts')
    ? [process.execPath, ['--import', 'tsx', join(repoRoot, entry)]]
    : [isAbsolute(entry) ? entry : join(repoRoot, entry), []];
  // A wrapper that execs the program (`ip netns exec NS`) keeps the pid: signals reach the program itself.
  const [command, ...args] = [...wrapper, program, ...programArgs] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

let agentBuilt = false;

/** The agent as servers run it: built from the sources of this checkout once per test process. */
export function agentEntry(): string {
  if (!agentBuilt) execFileSync(process.execPath, [join(repoRoot, 'deploy', 'build-agent.mjs')]);
  agentBuilt = true;
  return '.build/agent/strackt-agent';
}

/** A real agent process for a server, enrolled through the API with the server's agent token. */
export function startAgent(
  apiUrl: string,
  agentToken: string,
  dataRoot: string,
  env: Record<string, string> = {},
  wrapper: string[] = [],
): ProgramRun {
  return runProgram(
    agentEntry(),
    { STRACKT_API_URL: apiUrl, STRACKT_AGENT_TOKEN: agentToken, STRACKT_DATA_ROOT: dataRoot, ...env },
    wrapper,
  );
}

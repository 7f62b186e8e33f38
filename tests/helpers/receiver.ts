import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runProgram, type ProgramRun } from './processes.ts';
import { freePort, waitFor } from './stack.ts';

/**
 * A host of its own for a receiver: a network namespace joined to this one by a veth pair, so what
 * is sent to it crosses a real interface (with its own address, routes and MTU). `address` is the
 * namespace's end, `hostAddress` this side's (what the namespace reaches this machine at). Undefined
 * where the machine does not allow it (no root, no iproute2): the receiver then listens on loopback.
 */
export function makeNetworkNamespace():
  { name: string; address: string; hostAddress: string; remove: () => void } | undefined {
  const tag = randomBytes(3).toString('hex');
  const name = `strackt-${tag}`;
  const [host, peer] = [`vs${tag}h`, `vs${tag}r`];
  // A /30 of 10.123.0.0/16 picked by the tag, so parallel runs do not collide.
  const n = parseInt(tag, 16) % 16_000;
  const net = `10.123.${Math.floor(n / 64)}.${(n % 64) * 4}`;
  const at = (last: number) => net.replace(/\d+$/, (x) => String(Number(x) + last));
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  try {
    ip('netns', 'add', name);
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', name);
    ip('addr', 'add', `${at(1)}/30`, 'dev', host);
    ip('link', 'set', host, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${at(2)}/30`, 'dev', peer);
    ip('netns', 'exec', name, 'ip', 'link', 'set', peer, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch {
    try {
      ip('netns', 'del', name);
    } catch {
      // it was never made
    }
    return undefined;
  }
  return {
    name,
    address: at(2),
    hostAddress: at(1),
    remove: () => {
      try {
        ip('netns', 'del', name); // takes its end of the veth pair, and so the pair, with it
      } catch {
        // already gone
      }
    },
  };
}

export interface RunningReceiver {
  url: string;
  fingerprint: string;
  enrolmentCode: string | undefined;
  program: ProgramRun;
  /** Starts it again (same data directory, address and certificate, unless the certificate was removed). */
  restart: () => Promise<RunningReceiver>;
}

/** The receiver program on its data directory, in `netns` when given, listening on a free port. */
export async function startReceiver(
  dataDir: string,
  netns?: { name: string; address: string },
  port?: number,
): Promise<RunningReceiver> {
  const listenPort = port ?? (await freePort());
  const address = netns?.address ?? '127.0.0.1';
  const program = runProgram(
    'receiver/main.ts',
    { STRACKT_RECEIVER_DATA: dataDir, STRACKT_RECEIVER_LISTEN: `${address}:${listenPort}` },
    netns ? ['ip', 'netns', 'exec', netns.name] : [],
  );
  const banner = await waitFor(
    'the receiver to start',
    async () => {
      if (program.child.exitCode !== null) throw new Error(`the receiver exited: ${program.output()}`);
      const out = program.output();
      // A receiver not enrolled yet prints its code after the fingerprint.
      const enrolled = existsSync(join(dataDir, 'credentials.json'));
      return /fingerprint: \S+/.test(out) && (enrolled || /enrolment code.*: \S+/.test(out))
        ? out
        : undefined;
    },
    { timeoutMs: 30_000 },
  );
  return {
    url: `https://${address}:${listenPort}`,
    fingerprint: /fingerprint: (\S+)/.exec(banner)![1]!,
    enrolmentCode: /enrolment code.*: (\S+)/.exec(banner)?.[1],
    program,
    restart: () => startReceiver(dataDir, netns, listenPort),
  };
}

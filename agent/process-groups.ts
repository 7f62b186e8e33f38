import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Kernel start time of a process (clock ticks since boot): tells our process from a later one reusing its pid. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** State letter and process group of a process, from /proc; undefined once it is gone. */
function procStat(pid: string): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/**
 * Whether any process of the group still runs. kill(-pgid, 0) alone also counts zombies: a service
 * whose agent was restarted is a child of init, and an init that reaps slowly (seen here: 1.5 s)
 * made every stop of such a service wait that long.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const leader = procStat(String(pgid));
  if (leader && leader.state !== 'Z' && leader.pgrp === pgid) return true;
  return readdirSync('/proc').some((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    const p = procStat(pid);
    return p !== undefined && p.pgrp === pgid && p.state !== 'Z';
  });
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Sends the stop signal, waits up to the grace period, then kills the whole group. */
export async function stopGroup(
  pgid: number,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<'stopped' | 'killed'> {
  signalGroup(pgid, signal);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid)) return 'stopped';
    await sleep(50);
  }
  signalGroup(pgid, 'SIGKILL');
  for (let i = 0; i < 100 && groupAlive(pgid); i++) await sleep(50);
  return 'killed';
}

import { readdirSync, readFileSync } from 'node:fs';

// Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every common build).
const ticksPerSecond = 100;

/** What a process is on this machine during the run, from its pid and command line. */
export type Classify = (pid: number, cmdline: string) => string | undefined;

interface Seen {
  ppid: number;
  cmdline: string;
  seconds: number;
}

function cpuByProcess(): Map<number, Seen> {
  const out = new Map<number, Seen>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      // Its own time and its reaped children's: an agent's tar processes live a moment each.
      const ticks = [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i]), 0);
      out.set(pid, { ppid: Number(fields[1]), cmdline, seconds: ticks / ticksPerSecond });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

/**
 * The whole machine's CPU over a window, per component: where the cores go under load. A process
 * counts with the children it reaped; one that ended inside the window counts in its parent's.
 */
export function cpuByComponent(classify: Classify) {
  const at = performance.now();
  const from = cpuByProcess();
  return (): Map<string, number> => {
    const seconds = (performance.now() - at) / 1000;
    const cores = new Map<string, number>();
    const now = cpuByProcess();
    const programOf = (cmdline: string) => cmdline.split(' ')[0]!.split('/').at(-1) || 'kernel';
    // A process nothing claims is its parent's (an agent's tar), else other, by program name.
    const componentOf = (pid: number, depth = 0): string | undefined => {
      const seen = now.get(pid);
      if (!seen) return undefined;
      return classify(pid, seen.cmdline) ?? (depth < 3 ? componentOf(seen.ppid, depth + 1) : undefined);
    };
    for (const [pid, { seconds: used }] of now) {
      const spent = used - (from.get(pid)?.seconds ?? 0);
      if (spent <= 0) continue;
      const component = componentOf(pid) ?? `other: ${programOf(now.get(pid)!.cmdline)}`;
      cores.set(component, (cores.get(component) ?? 0) + spent / seconds);
    }
    return new Map([...cores].sort((a, b) => b[1] - a[1]));
  };
}

/** The processes whose command line holds every one of `parts`. */
export function pidsWhoseCommandHas(...parts: string[]): number[] {
  return [...cpuByProcess()]
    .filter(([, { cmdline }]) => parts.every((p) => cmdline.includes(p)))
    .map(([pid]) => pid);
}

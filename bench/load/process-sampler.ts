import { readFileSync } from 'node:fs';
import { rssMiB } from '../process-memory.ts';

export interface ProcessSample {
  at: number;
  rssMiB: number;
  /** Share of one core used since the previous sample (1 = a whole core). */
  cpu: number;
}

// Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every common build).
const ticksPerSecond = 100;

/** The process's user + system CPU time so far, in seconds, all its threads included. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Samples a process's CPU and RSS from /proc each time `sample` is called. */
export function processSampler(pid: number) {
  let last = { at: performance.now(), cpu: cpuSeconds(pid) };
  const samples: ProcessSample[] = [];
  return {
    samples,
    sample(): void {
      const now = { at: performance.now(), cpu: cpuSeconds(pid) };
      samples.push({
        at: Date.now(),
        rssMiB: rssMiB(pid).now,
        cpu: (now.cpu - last.cpu) / ((now.at - last.at) / 1000),
      });
      last = now;
    },
  };
}

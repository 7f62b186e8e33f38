import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Rss {
  /** Resident now (VmRSS), MiB. */
  now: number;
  /** Resident at its highest since start or the last resetPeak (VmHWM), MiB. */
  peak: number;
}

/** A process's resident memory, from /proc (Linux). */
export function rssMiB(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { now: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** Sets VmHWM back to the current RSS (Linux: 5 > clear_refs), so the next peak read is of what follows. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** A connected agent's memory once it has sat without work for `seconds`: what a server pays between jobs. */
export async function idleRssMiB(pid: number, seconds: number): Promise<Rss> {
  await sleep(seconds * 1000);
  return rssMiB(pid);
}

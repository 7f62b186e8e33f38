import { CronExpressionParser } from 'cron-parser';
import {
  compileCron,
  nextRun,
  nextRuns,
  offsetAt,
  wallClock,
  type CompiledCron,
} from './temporal-calendar.ts';

/** Runs closer than this are refused: a backup every few minutes only ever overlaps itself. */
export const minimumSpacingSeconds = 15 * 60;

const day = 86_400;
// DST rules repeat every year: a year and a bit ahead sees every change a schedule will meet.
const horizonDays = 400;

const pad = (n: number) => String(n).padStart(2, '0');

/** "2027-03-28T02:30:00+02:00": the local wall-clock time of an instant, with its offset. */
export function localTime(unix: number, zone: string): string {
  const w = wallClock(unix, zone);
  const offset = offsetAt(unix, zone) / 60;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const localDate = (unix: number, zone: string) => localTime(unix, zone).slice(0, 10);
const localClock = (unix: number, zone: string) => localTime(unix, zone).slice(11, 16);

export interface ClockChange {
  /** The first instant (unix seconds) of the new offset. */
  at: number;
  /** Offset change in seconds: positive forward (spring), negative back (fall). */
  shift: number;
}

/** Offset changes of a zone between two instants, found to the second. */
export function clockChanges(zone: string, from: number, to: number): ClockChange[] {
  const changes: ClockChange[] = [];
  for (let t = from; t < to; t += day / 2) {
    const end = Math.min(t + day / 2, to);
    const before = offsetAt(t, zone);
    if (offsetAt(end, zone) === before) continue;
    let [lo, hi] = [t, end];
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetAt(mid, zone) === before) lo = mid;
      else hi = mid;
    }
    changes.push({ at: hi, shift: offsetAt(hi, zone) - before });
  }
  return changes;
}

function describeShift(shift: number): string {
  const minutes = Math.abs(shift) / 60;
  const amount =
    minutes % 60 === 0 ? `${minutes / 60} hour${minutes === 60 ? '' : 's'}` : `${minutes} minutes`;
  return `${shift > 0 ? 'forward' : 'back'} ${amount}`;
}

/**
 * The two closest consecutive runs in the year ahead, with how far apart they are: within a day,
 * across midnight, and around every clock change (where a fall-back can bring runs closer than the
 * expression suggests).
 */
export function closestRuns(
  cron: CompiledCron,
  zone: string,
  from: number,
): { seconds: number; first: number; second: number } | undefined {
  let best: { seconds: number; first: number; second: number } | undefined;
  const consider = (runs: number[]) => {
    for (let i = 1; i < runs.length; i++) {
      const seconds = runs[i]! - runs[i - 1]!;
      if (!best || seconds < best.seconds) best = { seconds, first: runs[i - 1]!, second: runs[i]! };
    }
  };
  // The first two days that run, and each clock change with a day either side, walked for real.
  const first = nextRun(cron, zone, from);
  if (first === undefined) return undefined;
  consider(runsBetween(cron, zone, first - 1, first + 2 * day));
  // Across midnight: the last run of one day and the first of the next, on the first such pair of days.
  const minutes = cron.hour.flatMap((h, hour) =>
    h ? cron.minute.flatMap((m, minute) => (m ? [hour * 60 + minute] : [])) : [],
  );
  const wraps = 1440 - minutes.at(-1)! + minutes[0]!;
  if (wraps * 60 < (best?.seconds ?? Infinity)) {
    for (let t = first; t < from + horizonDays * day; t += day) {
      const date = wallClock(t, zone);
      const next = wallClock(t + day, zone);
      if (runsOn(cron, date) && runsOn(cron, next)) {
        const midnight = Date.UTC(next.year, next.month - 1, next.day) / 1000 - offsetAt(t + day, zone);
        consider(runsBetween(cron, zone, midnight - 2 * 3600, midnight + 2 * 3600));
        break;
      }
    }
  }
  for (const change of clockChanges(zone, from, from + horizonDays * day))
    consider(runsBetween(cron, zone, change.at - day, change.at + day));
  return best;
}

const runsOn = (cron: CompiledCron, d: { year: number; month: number; day: number }) =>
  cron.month[d.month]! &&
  cron.dayOfMonth[d.day]! &&
  cron.dayOfWeek[new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay()]!;

function runsBetween(cron: CompiledCron, zone: string, from: number, to: number): number[] {
  const runs: number[] = [];
  for (let t = nextRun(cron, zone, from); t !== undefined && t <= to; t = nextRun(cron, zone, t))
    runs.push(t);
  return runs;
}

/** Why an expression runs too often for a backup, in words; undefined when it does not. */
export function tooFrequent(
  expression: string,
  cron: CompiledCron,
  zone: string,
  from: number,
): string | undefined {
  const closest = closestRuns(cron, zone, from);
  if (!closest || closest.seconds >= minimumSpacingSeconds) return undefined;
  const gap = closest.seconds / 60;
  return `"${expression}" runs ${gap} minute${gap === 1 ? '' : 's'} apart (at ${localTime(closest.first, zone)} and ${localTime(closest.second, zone)}); backups run at most every 15 minutes`;
}

export interface PreviewRun {
  at: string;
  local: string;
}

export interface Preview {
  runs: PreviewRun[];
  warnings: string[];
}

/** The next runs as Temporal will start them, and what a user should know about them. */
export function preview(
  expression: string,
  cron: CompiledCron,
  zone: string,
  from: number,
  count: number,
): Preview {
  const times = nextRuns(cron, zone, from, count);
  const warnings: string[] = [];
  const last = times.at(-1) ?? from;
  for (const change of clockChanges(zone, from, last + 1)) {
    const date = localDate(change.at, zone);
    const when = localClock(change.at - 1, zone);
    const around = runsBetween(cron, zone, change.at - day, change.at + day);
    const words = [
      `Clocks in ${zone} go ${describeShift(change.shift)} on ${date} at ${when === '23:59' ? '24:00' : nextMinute(when)} local time.`,
    ];
    if (change.shift > 0) {
      const skipped = skippedTimes(cron, zone, change);
      words.push(
        skipped.length
          ? `Temporal does not run a local time that does not exist that day: ${skipped.join(', ')} will not run.`
          : 'No run of this schedule falls in the skipped time.',
      );
    } else {
      const seen = new Map<string, number>();
      for (const t of around) {
        const clock = localTime(t, zone).slice(0, 16);
        seen.set(clock, (seen.get(clock) ?? 0) + 1);
      }
      const twice = [...seen].filter(([, n]) => n > 1).map(([clock]) => clock.slice(11));
      words.push(
        twice.length
          ? `The repeated local time runs twice: ${twice.join(', ')} will run once before and once after the change.`
          : 'No run of this schedule happens twice.',
      );
    }
    warnings.push(words.join(' '));
  }
  if (cron.restrictsBothDays) {
    const classic = classicOnlyRun(expression, zone, from, times);
    warnings.push(
      'The expression names both a day of the month and a day of the week: Temporal runs only on days that match both, ' +
        `where classic cron runs on days that match either${classic ? ` (classic cron would also run at ${localTime(classic, zone)}, which will not run here)` : ''}.`,
    );
  }
  return {
    runs: times.map((t) => ({ at: new Date(t * 1000).toISOString(), local: localTime(t, zone) })),
    warnings,
  };
}

function nextMinute(clock: string): string {
  const [h, m] = clock.split(':').map(Number) as [number, number];
  const total = h * 60 + m + 1;
  return `${pad(Math.floor(total / 60) % 24)}:${pad(total % 60)}`;
}

/** Wall-clock times the expression names on a spring-forward day that the change skips. */
function skippedTimes(cron: CompiledCron, zone: string, change: ClockChange): string[] {
  const skipped: string[] = [];
  const before = wallClock(change.at - 1, zone);
  const start = before.hour * 60 + before.minute + 1;
  for (let minute = start; minute < start + change.shift / 60 && minute < 1440; minute++) {
    const [h, m] = [Math.floor(minute / 60), minute % 60];
    if (cron.hour[h] && cron.minute[m] && runsOn(cron, before)) skipped.push(`${pad(h)}:${pad(m)}`);
  }
  return skipped;
}

/** The first run classic cron (day of month OR day of week) would make that Temporal will not. */
function classicOnlyRun(expression: string, zone: string, from: number, ours: number[]): number | undefined {
  const classic = CronExpressionParser.parse(expression, { currentDate: new Date(from * 1000), tz: zone });
  const until = ours.at(-1) ?? from + horizonDays * day;
  const set = new Set(ours);
  for (let i = 0; i < 1000; i++) {
    const t = Math.floor(classic.next().getTime() / 1000);
    if (t > until) return undefined;
    if (!set.has(t)) return t;
  }
  return undefined;
}

/**
 * The runs a schedule would have made over the `days` before `now` (unix seconds), oldest first: what
 * a retention preview judges when asked to simulate. At most 5,000 (every 15 minutes, 52 days).
 */
export function simulatedRuns(cronText: string, zone: string, days: number, now: number): number[] {
  const cron = compileCron(cronText);
  const runs: number[] = [];
  for (
    let t = nextRun(cron, zone, now - days * 86_400);
    t !== undefined && t <= now && runs.length < 5000;
    t = nextRun(cron, zone, t)
  )
    runs.push(t);
  return runs;
}

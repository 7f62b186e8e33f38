/**
 * Cron expressions read and walked the way Temporal's scheduler does (server 1.29,
 * service/worker/scheduler: calendar.go and spec.go), so that a preview shows the runs Temporal will
 * really start. Where Temporal and classic cron differ, Temporal wins here:
 * - day-of-month and day-of-week are combined with AND (classic cron: OR);
 * - a wall-clock time that a spring-forward change skips does not run that day;
 * - the walk resolves local times as Go's time.Date does, and steps into the second copy of a
 *   repeated hour only when it crosses into it from the hour before, so times in the repeated
 *   hour run twice in zones west of UTC and, depending on the hours listed, once or twice east of it.
 * The table test (tests/integration/schedule-preview.test.ts) holds this to the real server's
 * nextActionTimes.
 */

export class CronSyntaxError extends Error {
  override name = 'CronSyntaxError';
}

interface FieldRule {
  name: string;
  min: number;
  max: number;
  names?: { list: string[]; prefix: number; offset: number };
}

const months = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const weekdays = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const fields: FieldRule[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: { list: months, prefix: 3, offset: 1 } },
  { name: 'day of week', min: 0, max: 6, names: { list: weekdays, prefix: 2, offset: 0 } },
];

const predefined: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function value(text: string, rule: FieldRule, min: number): number {
  const names = rule.names;
  if (names && text.length >= names.prefix) {
    const i = names.list.findIndex((n) => n.startsWith(text.toLowerCase()));
    if (i >= 0) return i + names.offset;
  }
  if (!/^\d+$/.test(text))
    throw new CronSyntaxError(`${rule.name}: "${text}" is not a number${names ? ' or a name' : ''}`);
  const n = Number(text);
  if (n < min || n > rule.max) throw new CronSyntaxError(`${rule.name}: ${n} is outside ${min}-${rule.max}`);
  return n;
}

/** One field: lists, ranges, steps and names as Temporal accepts them (no L, W, # or ?). */
function parseField(text: string, rule: FieldRule): boolean[] {
  const set = Array<boolean>(rule.max + 1).fill(false);
  for (const part of text.split(',')) {
    const [range, stepText, ...extra] = part.split('/');
    if (extra.length || range === '' || stepText === '')
      throw new CronSyntaxError(`${rule.name}: "${part}" is malformed`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1)
      throw new CronSyntaxError(`${rule.name}: the step in "${part}" must be a whole number of 1 or more`);
    let start = rule.min;
    let end = rule.max;
    if (range !== '*') {
      const bounds = range!.split('-');
      if (bounds.length > 2) throw new CronSyntaxError(`${rule.name}: "${part}" is malformed`);
      start = value(bounds[0]!, rule, rule.min);
      // "5/15" runs from 5 to the end of the field; "5" alone only at 5.
      end = bounds.length === 2 ? value(bounds[1]!, rule, start) : stepText === undefined ? start : rule.max;
    }
    for (let v = start; v <= end; v += step) set[v] = true;
  }
  return set;
}

export interface CompiledCron {
  minute: boolean[];
  hour: boolean[];
  dayOfMonth: boolean[];
  month: boolean[];
  dayOfWeek: boolean[];
  /** Day of month and day of week are both restricted: Temporal requires both (classic cron either). */
  restrictsBothDays: boolean;
}

/** A five-field expression (or @hourly, @daily, ...); anything else is refused with what is wrong. */
export function compileCron(expression: string): CompiledCron {
  const text = predefined[expression.trim()] ?? expression.trim();
  if (text.startsWith('@'))
    throw new CronSyntaxError(
      `"${text.split(/\s/)[0]}" is not supported: use a preset, @hourly, @daily, @weekly, @monthly or five fields`,
    );
  if (/^(CRON_)?TZ=/.test(text))
    throw new CronSyntaxError('set the time zone in timezone, not in the expression');
  const parts = text.split(/\s+/);
  if (parts.length !== 5)
    throw new CronSyntaxError(
      `expected five fields (minute hour day-of-month month day-of-week), found ${parts.length}`,
    );
  const [minute, hour, dayOfMonth, month, dayOfWeek] = parts.map((p, i) => parseField(p, fields[i]!));
  return {
    minute: minute!,
    hour: hour!,
    dayOfMonth: dayOfMonth!,
    month: month!,
    dayOfWeek: dayOfWeek!,
    restrictsBothDays: parts[2] !== '*' && parts[4] !== '*',
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether the runtime knows this IANA zone name. */
export function isTimeZone(name: string): boolean {
  try {
    wallClock(0, name);
    return true;
  } catch {
    return false;
  }
}

export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The local date and time at an instant (unix seconds) in a zone. */
export function wallClock(unix: number, zone: string): WallClock {
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, format);
  }
  const p: Record<string, number> = {};
  for (const part of format.formatToParts(unix * 1000))
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour!, minute: p.minute!, second: p.second! };
}

/** The zone's offset from UTC at an instant, in seconds. */
export function offsetAt(unix: number, zone: string): number {
  const w = wallClock(unix, zone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) / 1000 - unix;
}

/**
 * A local time to an instant as Go's time.Date does it: the offset in force at the local time read
 * as UTC, corrected once if that lands in another period. A time a change skips comes out shifted;
 * a repeated one comes out as one of its two instants.
 */
function localToInstant(
  zone: string,
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s = 0,
): number {
  const local = Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
  const first = offsetAt(local, zone);
  const second = offsetAt(local - first, zone);
  return first === second ? local - first : local - second;
}

const daysIn = (month: number, year: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const weekday = (y: number, mo: number, d: number) => new Date(Date.UTC(y, mo - 1, d)).getUTCDay();
const lastYear = 2100;

/** The first run strictly after `after` (unix seconds), as Temporal's scheduler finds it. */
export function nextRun(cron: CompiledCron, zone: string, after: number): number | undefined {
  const now = wallClock(after, zone);
  let { year: y, month: mo, day: d, hour: h, minute: m, second: s } = now;
  // Already in the second copy of a repeated hour: what follows is in it too.
  let repeat = wallClock(after - 3600, zone).hour === h ? 3600 : 0;
  s++;
  for (;;) {
    if (s >= 60) [m, s] = [m + 1, 0];
    if (m >= 60) {
      const before = localToInstant(zone, y, mo, d, h, 0);
      [h, m] = [h + 1, 0];
      // Two hours between h:00 and (h+1):00: h repeats; walk its second copy before going on.
      if (repeat === 0 && localToInstant(zone, y, mo, d, h, 0) - before > 3600) {
        h--;
        repeat = 3600;
      } else repeat = 0;
    }
    if (h >= 24) [d, h] = [d + 1, 0];
    if (d > daysIn(mo, y)) [mo, d] = [mo + 1, 1];
    if (mo > 12) [y, mo] = [y + 1, 1];
    if (y > lastYear) return undefined;
    if (!cron.month[mo]) {
      [mo, d, h, m, s, repeat] = [mo + 1, 1, 0, 0, 0, 0];
      continue;
    }
    if (!cron.dayOfMonth[d] || !cron.dayOfWeek[weekday(y, mo, d)]) {
      [d, h, m, s, repeat] = [d + 1, 0, 0, 0, 0];
      continue;
    }
    if (!cron.hour[h]) {
      [h, m, s, repeat] = [h + 1, 0, 0, 0];
      continue;
    }
    if (!cron.minute[m]) {
      [m, s] = [m + 1, 0];
      continue;
    }
    if (s !== 0) {
      [m, s] = [m + 1, 0];
      continue;
    }
    const at = localToInstant(zone, y, mo, d, h, m, s);
    // A time a spring-forward change skipped comes out in another hour: it does not run.
    if (wallClock(at, zone).hour !== h) {
      [h, m, s] = [h + 1, 0, 0];
      continue;
    }
    return at + repeat;
  }
}

/** The next `count` runs after `after` (unix seconds). */
export function nextRuns(cron: CompiledCron, zone: string, after: number, count: number): number[] {
  const runs: number[] = [];
  for (let t = after; runs.length < count;) {
    const next = nextRun(cron, zone, t);
    if (next === undefined) break;
    runs.push(next);
    t = next;
  }
  return runs;
}

import { wallClock } from './temporal-calendar.ts';

/** How many of each to keep, as restic's `forget` counts them; leave one out to not keep by it. */
export interface RetentionRule {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface RetainedSnapshot {
  id: string;
  /** When the snapshot was taken (its point in time), unix seconds, with the milliseconds as a fraction. */
  takenAt: number;
  pinned?: boolean;
}

export interface RetentionDecision {
  id: string;
  keep: boolean;
  /** Why it is kept, one reason per rule that keeps it ("daily 2026-11-20", "last 3", "pinned"). */
  reasons: string[];
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO 8601 week of a calendar date: weeks start on Monday, week 1 holds the year's first Thursday. */
function isoWeek(year: number, month: number, day: number): string {
  const thursdayOf = (d: Date) => {
    const t = new Date(d);
    t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7) + 3);
    return t;
  };
  const thursday = thursdayOf(new Date(Date.UTC(year, month - 1, day)));
  const weekYear = thursday.getUTCFullYear();
  const firstThursday = thursdayOf(new Date(Date.UTC(weekYear, 0, 4)));
  const week = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / (7 * 86_400_000));
  return `${weekYear}-W${pad(week)}`;
}

/**
 * The period a snapshot falls in for each kind of rule, by the wall clock of the schedule's zone: a
 * day is a local calendar day (23 or 25 hours on a clock-change day), the repeated hour of a fall-back
 * is one hour, as a person reading the times would count them.
 */
function periods(takenAt: number, zone: string): Record<Exclude<keyof RetentionRule, 'last'>, string> {
  const w = wallClock(takenAt, zone);
  const date = `${w.year}-${pad(w.month)}-${pad(w.day)}`;
  return {
    hourly: `${date} ${pad(w.hour)}:00`,
    daily: date,
    weekly: isoWeek(w.year, w.month, w.day),
    monthly: `${w.year}-${pad(w.month)}`,
    yearly: `${w.year}`,
  };
}

/**
 * Which snapshots a rule keeps (restic's model): the newest `last`; then for each of hourly, daily,
 * weekly, monthly and yearly, the newest snapshot of each of the N most recent periods that have one.
 * Pinned snapshots are always kept. Every kept snapshot says why; the others are to be deleted.
 */
export function applyRetention(
  snapshots: RetainedSnapshot[],
  rule: RetentionRule,
  zone: string,
): RetentionDecision[] {
  const newestFirst = [...snapshots].sort((a, b) => b.takenAt - a.takenAt || b.id.localeCompare(a.id));
  // No count at all is no rule, not "keep nothing": restic refuses such a forget for the same reason.
  if (!Object.values(rule).some((n) => n))
    return newestFirst.map((s) => ({ id: s.id, keep: true, reasons: ['no rule'] }));
  const reasons = new Map<string, string[]>(newestFirst.map((s) => [s.id, []]));
  newestFirst.forEach((s, i) => {
    if (s.pinned) reasons.get(s.id)!.push('pinned');
    if (rule.last !== undefined && i < rule.last) reasons.get(s.id)!.push(`last ${i + 1}`);
  });
  for (const kind of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const count = rule[kind];
    if (!count) continue;
    const seen = new Set<string>();
    for (const s of newestFirst) {
      if (seen.size >= count) break;
      const period = periods(s.takenAt, zone)[kind];
      if (seen.has(period)) continue;
      seen.add(period);
      reasons.get(s.id)!.push(`${kind} ${period}`);
    }
  }
  return newestFirst.map((s) => {
    const why = reasons.get(s.id)!;
    return { id: s.id, keep: why.length > 0, reasons: why };
  });
}

/** The rule in words, for the user: "the last 3, one a day for 7 days and one a month for 12 months". */
export function retentionInWords(rule: RetentionRule): string {
  const parts: string[] = [];
  if (rule.last) parts.push(`the last ${rule.last}`);
  const units = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' } as const;
  for (const kind of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const n = rule[kind];
    if (n) parts.push(`one a ${units[kind]} for ${n} ${units[kind]}${n === 1 ? '' : 's'} that have backups`);
  }
  if (!parts.length) return 'everything (no rule)';
  return `keeps ${parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`}, and every pinned snapshot`;
}

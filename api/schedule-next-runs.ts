import type { Client } from '@temporalio/client';
import { temporalScheduleId } from './schedule-sync.ts';

// A pause made in Temporal outside strackt shows within this long; changes made through strackt
// change the row's updated_at, and so show at once.
const maxAgeMs = 5 * 60_000;
// Entries are small (ten dates): this bounds memory in an API process serving many teams' pages.
const maxEntries = 10_000;

/**
 * Temporal's next fire times of a schedule, asked once and kept until the first of them passes (or
 * five minutes at most), per schedule and version of its row. The backups overview is what people
 * leave open and poll; a describe per enabled schedule per poll was most of its time, and of
 * Temporal's frontend work at a thousand environments, for an answer that changes only when a run
 * fires or the schedule changes.
 */
export function scheduleNextRuns(temporal: Client) {
  const kept = new Map<string, { version: number; until: number; times: Date[] }>();
  return async (schedule: { id: string; updatedAt: Date }): Promise<Date[]> => {
    const now = Date.now();
    const version = schedule.updatedAt.getTime();
    const hit = kept.get(schedule.id);
    if (hit && hit.version === version && now < hit.until) return hit.times;
    const described = await temporal.schedule.getHandle(temporalScheduleId(schedule.id)).describe();
    const times = described.info.nextActionTimes;
    const firstPasses = times[0]?.getTime() ?? Infinity;
    kept.delete(schedule.id); // re-inserted last: the Map's order is then oldest first
    kept.set(schedule.id, { version, until: Math.min(firstPasses, now + maxAgeMs), times });
    if (kept.size > maxEntries) kept.delete(kept.keys().next().value!);
    return times;
  };
}

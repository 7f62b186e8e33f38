import { z } from 'zod';
import { invalid } from './errors.ts';
import { idCharacters } from './ids.ts';
import { tooFrequent } from './schedule-preview.ts';
import { compileCron, CronSyntaxError, isTimeZone, nextRun, type CompiledCron } from './temporal-calendar.ts';

const count = z.number().int().min(1).max(10_000).optional();
export const retentionSchema = z
  .strictObject({ last: count, hourly: count, daily: count, weekly: count, monthly: count, yearly: count })
  .refine(
    (r) => Object.values(r).some((n) => n),
    'give at least one count, or leave retention out to keep everything',
  );

export const presets = [
  'every15Minutes',
  'every30Minutes',
  'hourly',
  'every6Hours',
  'every12Hours',
  'daily',
  'weekly',
] as const;
export type Preset = (typeof presets)[number];

const weekdays = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

/** What a user saves (and previews): a preset or a cron expression, a zone, a destination, a policy. */
export const scheduleBodySchema = z.strictObject({
  preset: z.enum(presets).optional(),
  /** Minute past the hour, for hourly, every6Hours and every12Hours (default 0). */
  minute: z.number().int().min(0).max(59).optional(),
  /** Local time HH:MM, for daily and weekly. */
  at: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time HH:MM (00:00 to 23:59)')
    .optional(),
  /** Day of the week, for weekly. */
  day: z.enum(weekdays).optional(),
  cron: z.string().max(200).optional(),
  timezone: z.string().max(64).default('UTC'),
  destinationId: z.string().max(64).regex(idCharacters, 'must be an id: letters, digits, _ and -'),
  enabled: z.boolean().default(true),
  overlap: z.enum(['skip', 'bufferOne']).default('skip'),
  /** Which of this schedule's snapshots to keep (restic's counts); left out: all of them. */
  retention: retentionSchema.optional(),
  /** Verify each snapshot this schedule makes, right after its backup (streamed and checked on the environment's server). */
  verify: z.boolean().default(false),
});
export type ScheduleBody = z.infer<typeof scheduleBodySchema>;

export const overlapInWords = {
  skip: 'If the previous backup of this environment is still running when a run is due, that run is skipped and recorded as a missed backup.',
  bufferOne:
    'If the previous backup of this environment is still running when a run is due, that run waits and starts as soon as it ends; at most one run waits, any further one is skipped and recorded as a missed backup.',
} as const;

/** The expression a preset stands for, in the schedule's own time zone. */
function presetCron(body: ScheduleBody): string {
  const minute = body.minute ?? 0;
  const [hour, min] = (body.at ?? '').split(':').map(Number);
  switch (body.preset!) {
    case 'every15Minutes':
      return '*/15 * * * *';
    case 'every30Minutes':
      return '*/30 * * * *';
    case 'hourly':
      return `${minute} * * * *`;
    case 'every6Hours':
      return `${minute} */6 * * *`;
    case 'every12Hours':
      return `${minute} */12 * * *`;
    case 'daily':
      return `${min} ${hour} * * *`;
    case 'weekly':
      return `${min} ${hour} * * ${weekdays.indexOf(body.day!)}`;
  }
}

export interface CompiledSchedule {
  cron: string;
  compiled: CompiledCron;
  timezone: string;
}

/**
 * Checks a schedule body beyond its shape and says what it runs: the field at fault and the problem
 * otherwise (a 422). `now` (unix seconds) is where the 15-minute rule starts looking.
 */
export function compileSchedule(body: ScheduleBody, now: number): CompiledSchedule {
  if (!isTimeZone(body.timezone))
    throw invalid('timezone', `"${body.timezone}" is not an IANA time zone (such as Europe/Berlin or UTC)`);
  if ((body.preset === undefined) === (body.cron === undefined))
    throw invalid('preset', 'give either preset or cron, not both and not neither');
  if (body.preset) {
    const needsAt = body.preset === 'daily' || body.preset === 'weekly';
    const takesMinute = ['hourly', 'every6Hours', 'every12Hours'].includes(body.preset);
    if (needsAt && !body.at)
      throw invalid('at', `required for the ${body.preset} preset (HH:MM, local time)`);
    if (!needsAt && body.at) throw invalid('at', `not used by the ${body.preset} preset`);
    if (body.preset === 'weekly' && !body.day) throw invalid('day', 'required for the weekly preset');
    if (body.preset !== 'weekly' && body.day) throw invalid('day', `not used by the ${body.preset} preset`);
    if (!takesMinute && body.minute !== undefined)
      throw invalid('minute', `not used by the ${body.preset} preset`);
  } else if (body.minute !== undefined || body.at || body.day) {
    throw invalid(body.minute !== undefined ? 'minute' : body.at ? 'at' : 'day', 'only used with a preset');
  }
  const cron = body.preset ? presetCron(body) : body.cron!.trim();
  let compiled: CompiledCron;
  try {
    compiled = compileCron(cron);
  } catch (err) {
    if (err instanceof CronSyntaxError) throw invalid('cron', err.message);
    throw err;
  }
  if (nextRun(compiled, body.timezone, now) === undefined)
    throw invalid('cron', `"${cron}" never runs (no date matches every field)`);
  const why = tooFrequent(cron, compiled, body.timezone, now);
  if (why) throw invalid(body.preset ? 'preset' : 'cron', why);
  return { cron, compiled, timezone: body.timezone };
}

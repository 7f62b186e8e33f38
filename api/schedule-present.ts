// What both schedule routers show of a schedule, and the check of a body against the team's data.
import { z } from '@hono/zod-openapi';
import { invalid } from '../common/errors.ts';
import { retentionInWords } from '../common/retention.ts';
import {
  compileSchedule,
  overlapInWords,
  retentionSchema,
  type ScheduleBody,
} from '../common/schedule-spec.ts';
import type { Db } from '../db/database.ts';
import { destinationExists } from '../db/destinations.data.ts';
import { type ScheduleFields } from '../db/schedules.data.ts';
import type { BackupSchedule } from '../db/tables/schedule.table.ts';
import { temporalScheduleId } from './schedule-sync.ts';

export const runSchema = z.object({ at: z.string(), local: z.string() });

export const scheduleSchema = z
  .object({
    id: z.string(),
    environmentId: z.string(),
    destinationId: z.string(),
    preset: z.string().optional(),
    minute: z.number().optional(),
    at: z.string().optional(),
    day: z.string().optional(),
    cron: z.string().openapi({ description: 'The expression Temporal runs (a preset’s, or the one given)' }),
    timezone: z.string(),
    enabled: z.boolean(),
    overlap: z.enum(['skip', 'bufferOne']),
    overlapInWords: z.string(),
    retention: retentionSchema.nullable(),
    retentionInWords: z.string(),
    verify: z.boolean().openapi({ description: 'Each snapshot is verified right after its backup' }),
    temporalScheduleId: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Schedule');

export const present = (s: BackupSchedule): z.infer<typeof scheduleSchema> => ({
  id: s.id,
  environmentId: s.environment_id,
  destinationId: s.destination_id,
  ...(s.body.preset && { preset: s.body.preset }),
  ...(s.body.minute !== undefined && { minute: s.body.minute }),
  ...(s.body.at && { at: s.body.at }),
  ...(s.body.day && { day: s.body.day }),
  cron: s.cron,
  timezone: s.timezone,
  enabled: s.enabled,
  overlap: s.overlap,
  overlapInWords: overlapInWords[s.overlap],
  retention: s.retention,
  retentionInWords: retentionInWords(s.retention ?? {}),
  verify: s.verify_after_backup,
  temporalScheduleId: temporalScheduleId(s.id),
  createdAt: s.created_at.toISOString(),
  updatedAt: s.updated_at.toISOString(),
});

/** Checks a body against the team's data too: the destination must be one of the team's. */
export async function fieldsOf(
  db: Db,
  teamId: string,
  body: ScheduleBody,
): Promise<ScheduleFields & { compiled: ReturnType<typeof compileSchedule>['compiled'] }> {
  const compiled = compileSchedule(body, Math.floor(Date.now() / 1000));
  if (!(await destinationExists(db, teamId, body.destinationId)))
    throw invalid('destinationId', `no destination ${body.destinationId} in this team`);
  return {
    destinationId: body.destinationId,
    body,
    cron: compiled.cron,
    timezone: compiled.timezone,
    enabled: body.enabled,
    overlap: body.overlap,
    retention: body.retention ?? null,
    verify: body.verify,
    compiled: compiled.compiled,
  };
}

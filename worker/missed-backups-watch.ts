import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { missedBackupsAction } from '../common/workflow-starts.ts';

export const missedBackupsScheduleId = 'strackt-missed-backups';

/**
 * The Temporal Schedule that looks for backup runs that never started, every five minutes. Made
 * once by the first control-plane worker; later ones find it there.
 */
export async function ensureMissedBackupsWatch(temporal: Client, taskQueue: string): Promise<void> {
  await temporal.schedule
    .create({
      scheduleId: missedBackupsScheduleId,
      spec: { intervals: [{ every: '5 minutes' }] },
      action: missedBackupsAction(taskQueue),
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    })
    .catch((err: unknown) => {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    });
}

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { compileCron, nextRuns } from '../../common/temporal-calendar.ts';
import { connectTestClient, uniqueName } from '../helpers/stack.ts';

/**
 * The preview must be what Temporal will do. Each case is a real Temporal Schedule (starting at the
 * case's instant, so the runs compared lie in the window that matters) whose server-computed
 * nextActionTimes must equal the preview, run for run.
 */
const cases: { name: string; cron: string; zone: string; from: string }[] = [
  { name: 'half-hour offset', cron: '0 9 * * *', zone: 'Asia/Kolkata', from: '2027-01-01T00:00:00Z' },
  {
    name: '45-minute offset, every 15 min',
    cron: '*/15 * * * *',
    zone: 'Asia/Kathmandu',
    from: '2027-01-01T00:05:00Z',
  },
  {
    name: '45-minute offset, weekdays',
    cron: '30 3 * * 1-5',
    zone: 'Australia/Eucla',
    from: '2027-01-01T00:00:00Z',
  },
  {
    name: 'north, spring forward, run in the skipped hour',
    cron: '30 2 * * *',
    zone: 'America/New_York',
    from: '2027-03-10T00:00:00Z',
  },
  {
    name: 'north, fall back, run in the repeated hour',
    cron: '30 1 * * *',
    zone: 'America/New_York',
    from: '2027-11-04T00:00:00Z',
  },
  {
    name: 'north, every 15 min across fall back',
    cron: '*/15 * * * *',
    zone: 'America/New_York',
    from: '2027-11-07T04:30:00Z',
  },
  {
    name: 'north, every 15 min across spring forward',
    cron: '*/15 * * * *',
    zone: 'America/New_York',
    from: '2027-03-14T06:20:00Z',
  },
  {
    name: 'east of UTC, spring forward',
    cron: '30 2 * * *',
    zone: 'Europe/Berlin',
    from: '2027-03-25T00:00:00Z',
  },
  { name: 'east of UTC, fall back', cron: '30 2 * * *', zone: 'Europe/Berlin', from: '2027-10-28T00:00:00Z' },
  {
    name: 'east of UTC, fall back, hours around it',
    cron: '0,30 1-3 * * *',
    zone: 'Europe/Berlin',
    from: '2027-10-30T22:00:00Z',
  },
  {
    name: 'east of UTC, every 15 min across fall back',
    cron: '*/15 * * * *',
    zone: 'Europe/Berlin',
    from: '2027-10-30T23:40:00Z',
  },
  {
    name: 'south, fall back (April)',
    cron: '30 2 * * *',
    zone: 'Australia/Sydney',
    from: '2027-04-01T00:00:00Z',
  },
  {
    name: 'south, spring forward (October)',
    cron: '30 2 * * *',
    zone: 'Australia/Sydney',
    from: '2027-09-30T00:00:00Z',
  },
  {
    name: 'south, half-hour offset with DST',
    cron: '15 2 * * *',
    zone: 'Australia/Adelaide',
    from: '2027-04-01T00:00:00Z',
  },
  {
    name: 'south, 45-minute offset with DST',
    cron: '0 2,3 * * *',
    zone: 'Pacific/Chatham',
    from: '2027-04-01T00:00:00Z',
  },
  { name: 'change at midnight', cron: '0 0 * * *', zone: 'America/Santiago', from: '2027-09-01T00:00:00Z' },
  { name: 'month ends, the 31st', cron: '0 0 31 * *', zone: 'UTC', from: '2027-01-01T00:00:00Z' },
  { name: 'the 29th to 31st', cron: '0 12 29-31 * *', zone: 'Europe/London', from: '2027-01-15T00:00:00Z' },
  { name: 'leap day', cron: '0 6 29 2 *', zone: 'UTC', from: '2027-01-01T00:00:00Z' },
  {
    name: 'day-of-week list',
    cron: '0 8 * * mon,wed,fri',
    zone: 'America/Sao_Paulo',
    from: '2027-01-01T00:00:00Z',
  },
  { name: 'day of month AND day of week', cron: '0 9 13 * 5', zone: 'UTC', from: '2027-01-01T00:00:00Z' },
  { name: 'every 6 hours', cron: '0 */6 * * *', zone: 'America/Los_Angeles', from: '2027-03-13T00:00:00Z' },
  { name: 'weekly on Sunday', cron: '45 1 * * 0', zone: 'America/New_York', from: '2027-10-30T00:00:00Z' },
];

describe('the schedule preview is what Temporal will do', () => {
  let temporal: Client;
  const created: string[] = [];

  before(async () => {
    temporal = await connectTestClient();
  });

  after(async () => {
    for (const id of created)
      await temporal.schedule
        .getHandle(id)
        .delete()
        .catch(() => {});
    await temporal.connection.close();
  });

  for (const c of cases) {
    it(`${c.name}: ${c.cron} in ${c.zone}`, async () => {
      const scheduleId = uniqueName('preview');
      const from = new Date(c.from);
      const handle = await temporal.schedule.create({
        scheduleId,
        spec: { cronExpressions: [c.cron], timezone: c.zone, startAt: from },
        // Never started: the first run lies in the future and nothing polls this queue.
        action: { type: 'startWorkflow', workflowType: 'previewProbe', taskQueue: scheduleId, args: [] },
      });
      created.push(scheduleId);
      const temporalRuns = (await handle.describe()).info.nextActionTimes.map((d) => d.toISOString());
      assert.equal(temporalRuns.length, 10, 'Temporal reports ten runs');
      const ours = nextRuns(compileCron(c.cron), c.zone, from.getTime() / 1000 - 1, 10).map((t) =>
        new Date(t * 1000).toISOString(),
      );
      assert.deepEqual(ours, temporalRuns);
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from '../../common/errors.ts';
import { compileSchedule, scheduleBodySchema } from '../../common/schedule-spec.ts';
import { compileCron, CronSyntaxError } from '../../common/temporal-calendar.ts';

const now = Date.parse('2026-11-26T00:00:00Z') / 1000;
const compile = (body: Record<string, unknown>) =>
  compileSchedule(scheduleBodySchema.parse({ destinationId: 'dst_x', ...body }), now);

describe('schedule presets and expressions', () => {
  it('turns each preset into the expression Temporal runs', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ preset: 'every15Minutes' }, '*/15 * * * *'],
      [{ preset: 'every30Minutes' }, '*/30 * * * *'],
      [{ preset: 'hourly', minute: 7 }, '7 * * * *'],
      [{ preset: 'every6Hours' }, '0 */6 * * *'],
      [{ preset: 'every12Hours', minute: 30 }, '30 */12 * * *'],
      [{ preset: 'daily', at: '03:30' }, '30 3 * * *'],
      [{ preset: 'weekly', day: 'sunday', at: '23:05' }, '5 23 * * 0'],
    ];
    for (const [body, cron] of cases) assert.equal(compile(body).cron, cron, JSON.stringify(body));
  });

  it('defaults to UTC, skip, enabled', () => {
    const body = scheduleBodySchema.parse({ destinationId: 'dst_x', cron: '0 3 * * *' });
    assert.equal(body.timezone, 'UTC');
    assert.equal(body.overlap, 'skip');
    assert.equal(body.enabled, true);
  });

  it('names the field of a preset used wrongly', () => {
    for (const [body, field] of [
      [{ preset: 'hourly', at: '03:00' }, 'at'],
      [{ preset: 'daily', at: '03:00', minute: 5 }, 'minute'],
      [{ preset: 'daily', at: '03:00', day: 'monday' }, 'day'],
      [{ cron: '0 3 * * *', minute: 5 }, 'minute'],
      [{}, 'preset'],
    ] as const) {
      assert.throws(
        () => compile(body),
        (err: unknown) => err instanceof DomainError && err.field === field,
        JSON.stringify(body),
      );
    }
  });

  it('reads names, steps and ranges as Temporal does, and refuses what Temporal does not take', () => {
    const cron = compileCron('5/20 9-17/4 * jan,JUL mon-fri');
    assert.deepEqual(
      cron.minute.flatMap((v, i) => (v ? [i] : [])),
      [5, 25, 45],
    );
    assert.deepEqual(
      cron.hour.flatMap((v, i) => (v ? [i] : [])),
      [9, 13, 17],
    );
    assert.deepEqual(
      cron.month.flatMap((v, i) => (v ? [i] : [])),
      [1, 7],
    );
    assert.deepEqual(
      cron.dayOfWeek.flatMap((v, i) => (v ? [i] : [])),
      [1, 2, 3, 4, 5],
    );
    assert.equal(compileCron('@daily').hour[0], true);
    for (const bad of [
      '0 0 * * 7',
      '0 0 ? * *',
      '0 0 1W * *',
      '0 0 * * 5#2',
      '*/0 * * * *',
      '0 0 0 * *',
      '@every 1h',
      'TZ=UTC 0 0 * * *',
    ])
      assert.throws(() => compileCron(bad), CronSyntaxError, bad);
  });
});

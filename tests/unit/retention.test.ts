import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyRetention, retentionInWords, type RetainedSnapshot } from '../../common/retention.ts';

const at = (iso: string) => Date.parse(iso) / 1000;
const snaps = (...isos: string[]): RetainedSnapshot[] =>
  isos.map((iso, i) => ({ id: `s${i}`, takenAt: at(iso) }));
const kept = (decisions: ReturnType<typeof applyRetention>) =>
  Object.fromEntries(decisions.filter((d) => d.keep).map((d) => [d.id, d.reasons.join('; ')]));

describe('retention rules (restic model)', () => {
  it('keep-last only', () => {
    const all = snaps(
      '2026-11-20T01:00:00Z',
      '2026-11-21T01:00:00Z',
      '2026-11-22T01:00:00Z',
      '2026-11-23T01:00:00Z',
    );
    assert.deepEqual(kept(applyRetention(all, { last: 2 }, 'UTC')), { s3: 'last 1', s2: 'last 2' });
  });

  it('keep-last knows the newest of snapshots taken within one second, by their milliseconds', () => {
    const taken = [
      { id: 'snap_z', takenAt: 1_700_000_000.125 },
      { id: 'snap_a', takenAt: 1_700_000_000.875 },
      { id: 'snap_m', takenAt: 1_700_000_000.5 },
    ];
    const kept = applyRetention(taken, { last: 2 }, 'UTC').filter((d) => d.keep);
    assert.deepEqual(
      kept.map((d) => d.id),
      ['snap_a', 'snap_m'],
    );
  });

  it('keeps everything when the rule counts nothing', () => {
    const all = snaps('2026-11-20T01:00:00Z', '2026-11-21T01:00:00Z');
    assert.ok(applyRetention(all, {}, 'UTC').every((d) => d.keep && d.reasons[0] === 'no rule'));
  });

  it('daily keeps the newest of each local day, across a fall-back day of 25 hours', () => {
    // America/New_York falls back on 2027-11-07: that local day runs from 04:00Z to 05:00Z the next day.
    const all = snaps(
      '2027-11-07T04:30:00Z', // 00:30 EDT, Nov 7
      '2027-11-07T05:30:00Z', // 01:30 EDT, Nov 7
      '2027-11-07T06:30:00Z', // 01:30 EST, Nov 7 (the repeated hour)
      '2027-11-08T04:30:00Z', // 23:30 EST, Nov 7: still Nov 7 locally
      '2027-11-08T05:30:00Z', // 00:30 EST, Nov 8
    );
    assert.deepEqual(kept(applyRetention(all, { daily: 5 }, 'America/New_York')), {
      s4: 'daily 2027-11-08',
      s3: 'daily 2027-11-07',
    });
    // Hourly: the repeated 01:00 hour counts once, as a person reads the clock.
    assert.deepEqual(kept(applyRetention(all, { hourly: 10 }, 'America/New_York')), {
      s4: 'hourly 2027-11-08 00:00',
      s3: 'hourly 2027-11-07 23:00',
      s2: 'hourly 2027-11-07 01:00',
      s0: 'hourly 2027-11-07 00:00',
    });
  });

  it('GFS across month ends and ISO weeks, in the schedule’s zone, with the reason for each kept one', () => {
    const all = snaps(
      '2026-12-31T23:30:00Z', // Jan 1 2027 00:30 in Berlin: January, week 2026-W53, year 2027
      '2026-12-31T20:00:00Z', // Dec 31 21:00 in Berlin
      '2026-12-30T20:00:00Z',
      '2026-11-30T20:00:00Z',
      '2026-11-01T20:00:00Z',
      '2026-10-31T20:00:00Z',
    );
    assert.deepEqual(
      kept(applyRetention(all, { daily: 2, weekly: 2, monthly: 3, yearly: 2 }, 'Europe/Berlin')),
      {
        s0: 'daily 2027-01-01; weekly 2026-W53; monthly 2027-01; yearly 2027',
        s1: 'daily 2026-12-31; monthly 2026-12; yearly 2026',
        s3: 'weekly 2026-W49; monthly 2026-11',
      },
    );
  });

  it('never deletes a pinned snapshot', () => {
    const all = snaps('2026-11-20T01:00:00Z', '2026-11-21T01:00:00Z', '2026-11-22T01:00:00Z');
    all[0]!.pinned = true;
    const decisions = applyRetention(all, { last: 1 }, 'UTC');
    assert.deepEqual(kept(decisions), { s2: 'last 1', s0: 'pinned' });
    assert.deepEqual(
      decisions.filter((d) => !d.keep).map((d) => d.id),
      ['s1'],
    );
  });

  it('says the rule in words', () => {
    assert.equal(
      retentionInWords({ last: 3, daily: 7, monthly: 12 }),
      'keeps the last 3, one a day for 7 days that have backups and one a month for 12 months that have backups, and every pinned snapshot',
    );
  });
});

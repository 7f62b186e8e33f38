import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
// First: the app extends zod with .openapi(), which schemas made before it lack (destination-spec's).
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { newId } from '../../common/ids.ts';
import { createDestination } from '../../db/destinations.data.ts';
import { createEnvironment } from '../../db/environments.data.ts';
import { insertSchedule } from '../../db/schedules.data.ts';
import { createServer } from '../../db/servers.data.ts';
import type { SnapshotTable } from '../../db/tables/snapshot.table.ts';
import { createTeam } from '../../db/teams.data.ts';
import { temporalScheduleId } from '../../api/schedule-sync.ts';
import { httpService } from '../helpers/services.ts';
import { uniqueName } from '../helpers/stack.ts';

/**
 * Issue 22: the overview is one query whose nested rows come back as JSON. Every figure from rows
 * made here: only complete snapshots count, each list in its order, timestamps as the API gives
 * them elsewhere, and another team's environment is not found.
 */
describe('the backups overview of an environment', () => {
  let cp: ControlPlane;
  let teamId: string;
  let token: string;
  let otherToken: string;
  let serverId: string;
  const hour = 3_600_000;
  const now = Date.now();

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, uniqueName('overview'));
    teamId = team.team.id;
    token = team.token;
    otherToken = (await createTeam(cp.db, uniqueName('others'))).token;
    serverId = (await createServer(cp.db, teamId, 'a')).server.id;
  });

  after(async () => {
    await cp?.stop();
  });

  const environment = async () =>
    (
      await createEnvironment(cp.db, teamId, {
        name: uniqueName('env'),
        serverId,
        services: [httpService(9)],
      })
    ).id;

  const destination = async () =>
    (
      await createDestination(
        cp.db,
        cp.vault,
        teamId,
        {
          name: uniqueName('dst'),
          endpoint: 'http://127.0.0.1:9',
          region: 'us-east-1',
          bucket: 'b',
          prefix: '',
          pathStyle: true,
          accessKeyId: 'AKID',
          secretAccessKey: 'SECRET',
        },
        new Date(),
      )
    ).id;

  async function snapshot(
    envId: string,
    destinationId: string,
    hoursAgo: number,
    fields: {
      status?: SnapshotTable['status'];
      size?: number;
      verified?: [number, 'ok' | 'failed' | 'missing'];
    },
  ): Promise<string> {
    const id = newId('snap');
    await cp.db
      .insertInto('snapshots')
      .values({
        id,
        team_id: teamId,
        environment_id: envId,
        destination_id: destinationId,
        source_server_id: serverId,
        operation_id: newId('op'),
        status: fields.status ?? 'complete',
        data_key: `${id}/data`,
        manifest_key: `${id}/manifest`,
        upload_id: null,
        key_id: 'k',
        size_bytes: fields.size ?? 1,
        tar_bytes: null,
        entries: null,
        data_sha256: null,
        manifest_sha256: null,
        frozen_ms: null,
        capture_ms: null,
        error: null,
        created_at: new Date(now - hoursAgo * hour),
        completed_at: null,
        verified_at: fields.verified ? new Date(now - fields.verified[0] * hour) : null,
        verification: fields.verified?.[1] ?? null,
        verification_error: fields.verified?.[1] === 'ok' ? null : (fields.verified?.[1] ?? null),
        deleted_at: null,
      })
      .execute();
    return id;
  }

  it('answers each figure from the rows, in its order, and nothing of another team', async () => {
    const envId = await environment();
    const [first, second] = [await destination(), await destination()];
    const ok = await snapshot(envId, first, 5, { size: 100, verified: [1, 'ok'] });
    const failed = await snapshot(envId, second, 4, { size: 200, verified: [2, 'failed'] });
    const missing = await snapshot(envId, first, 3, { size: 300, verified: [3, 'missing'] });
    const newest = await snapshot(envId, first, 2, { size: 400 });
    await snapshot(envId, second, 0.1, { status: 'uploading', size: 5000 });
    await snapshot(envId, second, 6, { status: 'deleted', size: 6000, verified: [0.5, 'failed'] });
    // Disabled: the overview shows the next runs of enabled schedules only.
    const fields = {
      destinationId: first,
      timezone: 'UTC',
      enabled: false,
      overlap: 'skip' as const,
      verify: false,
      retention: { last: 3 },
    };
    const { id: scheduleId } = await cp.db.transaction().execute((tx) =>
      insertSchedule(tx, teamId, envId, {
        ...fields,
        body: { ...fields, preset: 'daily', at: '04:00' },
        cron: '0 4 * * *',
      }),
    );
    const runAt = (h: number) => new Date(now - h * hour);
    const runs: [number, 'succeeded' | 'failed' | 'skipped' | 'missed', string | null][] = [
      [1, 'succeeded', null],
      [2, 'missed', 'never started'],
      [3, 'skipped', 'the agent is offline'],
      [4, 'failed', 'disk full'],
      [5, 'missed', 'never started'],
      [6, 'missed', 'never started'],
      [7, 'failed', 'oldest'],
    ];
    for (const [h, status, error] of runs)
      await cp.db
        .insertInto('schedule_runs')
        .values({
          schedule_id: scheduleId,
          nominal_at: runAt(h),
          status,
          operation_id: null,
          snapshot_id: null,
          error,
          finished_at: runAt(h),
        })
        .execute();

    const { status, body } = await cp.request('GET', `/environments/${envId}/backups`, token);
    assert.equal(status, 200, JSON.stringify(body));
    const iso = (h: number) => new Date(now - h * hour).toISOString();
    assert.deepEqual(body, {
      lastSuccessfulBackup: { snapshotId: newest, at: iso(2), sizeBytes: 400, destinationId: first },
      lastVerified: { snapshotId: ok, at: iso(1), result: 'ok', error: null },
      failedVerification: [missing, failed],
      nextRuns: [],
      missedRuns: {
        count: 6,
        latest: runs.slice(1, 6).map(([h, runStatus, reason]) => ({
          scheduleId,
          nominalAt: iso(h),
          status: runStatus,
          reason,
        })),
      },
      storage: [
        { destinationId: first, snapshots: 3, bytes: 800 },
        { destinationId: second, snapshots: 1, bytes: 200 },
      ],
      schedules: [
        { scheduleId, enabled: false, retentionInWords: 'keeps the last 3, and every pinned snapshot' },
      ],
    });

    const other = await cp.request('GET', `/environments/${envId}/backups`, otherToken);
    assert.equal(other.status, 404, JSON.stringify(other.body));
  });

  it('answers an environment with nothing yet', async () => {
    const envId = await environment();
    const { status, body } = await cp.request('GET', `/environments/${envId}/backups`, token);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, {
      lastSuccessfulBackup: null,
      lastVerified: null,
      failedVerification: [],
      nextRuns: [],
      missedRuns: { count: 0, latest: [] },
      storage: [],
      schedules: [],
    });
    const unknown = await cp.request('GET', '/environments/env_nope/backups', token);
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
  });

  it("shows the next runs Temporal will start, from the schedules' rows, without asking it", async () => {
    const envId = await environment();
    const destinationId = await destination();
    // Two schedules in zones with a clock change ahead, merged and the first five kept.
    const made = [];
    for (const body of [
      { preset: 'daily', at: '02:30', timezone: 'Europe/Berlin' },
      { cron: '15 1,13 * * *', timezone: 'America/New_York' },
    ]) {
      const res = await cp.request<{ id: string }>('POST', `/environments/${envId}/schedules`, token, {
        destinationId,
        ...body,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      made.push(res.body.id);
    }
    const temporalRuns = (
      await Promise.all(
        made.map(async (scheduleId) =>
          (
            await cp.temporal.schedule.getHandle(temporalScheduleId(scheduleId)).describe()
          ).info.nextActionTimes.map((d) => ({ scheduleId, at: d.toISOString() })),
        ),
      )
    )
      .flat()
      .sort((a, b) => a.at.localeCompare(b.at))
      .slice(0, 5);
    const overview = await cp.request<{ nextRuns: { scheduleId: string; at: string; local: string }[] }>(
      'GET',
      `/environments/${envId}/backups`,
      token,
    );
    assert.equal(overview.status, 200, JSON.stringify(overview.body));
    assert.deepEqual(
      overview.body.nextRuns.map(({ scheduleId, at }) => ({ scheduleId, at })),
      temporalRuns,
    );
    assert.equal(overview.body.nextRuns.length, 5);
    assert.deepEqual(new Set(overview.body.nextRuns.map((r) => r.scheduleId)), new Set(made), 'both merged');
    assert.ok(overview.body.nextRuns.every((r) => /T(02:30|01:15|13:15):00[+-]0\d:00$/.test(r.local)));
  });
});

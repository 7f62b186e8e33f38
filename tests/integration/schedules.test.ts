import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { sql } from 'kysely';
import { createScheduleActivities } from '../../activities/schedule.activities.ts';
import { createApp } from '../../api/app.ts';
import { operationWorkflowId } from '../../common/workflow-contracts.ts';
import { createLogger } from '../../common/log.ts';
import { beginRun, openScheduledRun } from '../../db/schedules.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { notingAnswers } from '../helpers/api-answers.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';

interface Schedule {
  id: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  temporalScheduleId: string;
  nextRuns: { at: string; local: string }[];
  recentRuns: { nominalAt: string; status: string; operationId: string | null; snapshotId: string | null }[];
}
interface Failure {
  error: { code: string; message: string; field?: string };
}

describe('backup schedules', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let envId: string;
  let destinationId: string;
  const dataRoot = join(stack.runDir, uniqueName('agent'));

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'schedulers');
    token = team.token;
    const server = await createServer(cp.db, team.team.id, 'a');
    agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
    await cp.connected(token, server.server.id);
    ({ destinationId } = await cp.addDestination(token));
    envId = await cp.deployWebEnvironment(token, server.server.id);
  });

  after(async () => {
    for (const { id } of await cp.db.selectFrom('backup_schedules').select('id').execute())
      await cp.temporal.schedule
        .getHandle(`backup-schedule-${id}`)
        .delete()
        .catch(() => {});
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
  });

  const describeInTemporal = (id: string) =>
    cp.temporal.schedule.getHandle(`backup-schedule-${id}`).describe();

  it('refuses what runs more often than every 15 minutes, bad syntax, zones and destinations, naming the field', async () => {
    const refused: [Record<string, unknown>, string, RegExp][] = [
      [{ cron: '*/5 * * * *' }, 'cron', /5 minutes apart.*at most every 15 minutes/],
      [{ cron: '0,10 * * * *' }, 'cron', /10 minutes apart/],
      [{ cron: '0-20/10 * * * *' }, 'cron', /10 minutes apart/],
      [{ cron: '0,50 0,23 * * *' }, 'cron', /10 minutes apart/],
      [{ cron: '0,50 1 * * *', timezone: 'America/New_York' }, 'cron', /10 minutes apart.*-04:00.*-05:00/],
      [{ cron: '61 * * * *' }, 'cron', /minute: 61 is outside 0-59/],
      [{ cron: '0 0 * *' }, 'cron', /five fields/],
      [{ cron: '0 0 L * *' }, 'cron', /day of month: "L" is not a number/],
      [{ cron: '0 0 31 2 *' }, 'cron', /never runs/],
      [{ cron: '0 3 * * *', timezone: 'Mars/Olympus_Mons' }, 'timezone', /not an IANA time zone/],
      [{ preset: 'daily' }, 'at', /required for the daily preset/],
      [{ preset: 'weekly', at: '03:00' }, 'day', /required for the weekly preset/],
      [{ preset: 'daily', at: '3am' }, 'at', /HH:MM/],
      [{ preset: 'daily', at: '03:00', cron: '0 3 * * *' }, 'preset', /either preset or cron/],
      [{ cron: '0 3 * * *', destinationId: 'dst_nosuchdestination' }, 'destinationId', /no destination/],
      [{ cron: '0 3 * * *', overlap: 'cancelOther' }, 'overlap', /skip|bufferOne/],
    ];
    for (const [body, field, message] of refused) {
      const res = await cp.request<Failure>('POST', `/environments/${envId}/schedules`, token, {
        destinationId,
        ...body,
      });
      assert.equal(res.status, 422, JSON.stringify({ body, res }));
      assert.equal(res.body.error.field, field, JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
    // Exactly 15 minutes apart is allowed.
    const ok = await cp.request('POST', `/environments/${envId}/schedules/preview`, token, {
      destinationId,
      cron: '0-20/15 * * * *',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(
      (await cp.db.selectFrom('backup_schedules').selectAll().execute()).length,
      0,
      'nothing saved',
    );
  });

  it('previews the next runs with their local times and warns of clock changes and AND-ed days', async () => {
    const weekly = await cp.request<{ runs: { at: string; local: string }[]; warnings: string[] }>(
      'POST',
      `/environments/${envId}/schedules/preview?count=50`,
      token,
      { destinationId, preset: 'weekly', day: 'sunday', at: '02:30', timezone: 'America/New_York' },
    );
    assert.equal(weekly.status, 200, JSON.stringify(weekly.body));
    assert.equal(weekly.body.runs.length, 50);
    assert.ok(
      weekly.body.runs.every((r) => /T02:30:00-0[45]:00$/.test(r.local)),
      JSON.stringify(weekly.body.runs),
    );
    assert.ok(
      weekly.body.warnings.some((w) => /go forward 1 hour.*02:30 will not run/.test(w)),
      JSON.stringify(weekly.body.warnings),
    );
    assert.ok(weekly.body.warnings.some((w) => /go back 1 hour/.test(w)));
    const daily = await cp.request<{ runs: unknown[]; warnings: string[] }>(
      'POST',
      `/environments/${envId}/schedules/preview`,
      token,
      { destinationId, cron: '0 9 13 * 5' },
    );
    assert.equal(daily.body.runs.length, 5, 'five runs by default');
    assert.match(
      daily.body.warnings.join(' '),
      /both a day of the month and a day of the week.*classic cron would also run/,
    );
    const tooMany = await cp.request<Failure>(
      'POST',
      `/environments/${envId}/schedules/preview?count=51`,
      token,
      {
        destinationId,
        cron: '0 9 * * *',
      },
    );
    assert.equal(tooMany.status, 422);
    assert.equal(tooMany.body.error.field, 'count');
  });

  it('keeps each Temporal Schedule in step: create, replace (not merge), pause, resume, delete', async () => {
    const created = await cp.request<Schedule>('POST', `/environments/${envId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: '03:00',
      timezone: 'Europe/Berlin',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    let described = await describeInTemporal(id);
    assert.deepEqual(described.spec.timezone, 'Europe/Berlin');
    assert.equal(described.state.paused, false);
    const shown = await cp.request<Schedule>('GET', `/schedules/${id}`, token);
    assert.deepEqual(
      shown.body.nextRuns.map((r) => r.at),
      described.info.nextActionTimes.map((d) => d.toISOString()),
    );
    assert.ok(
      shown.body.nextRuns.every((r) => /T03:00:00\+0[12]:00$/.test(r.local)),
      JSON.stringify(shown.body),
    );

    const replaced = await cp.request<Schedule>('PUT', `/schedules/${id}`, token, {
      destinationId,
      cron: '30 4 * * *',
      timezone: 'Asia/Kolkata',
    });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    described = await describeInTemporal(id);
    const locals = (await cp.request<Schedule>('GET', `/schedules/${id}`, token)).body.nextRuns.map(
      (r) => r.local,
    );
    assert.ok(
      locals.every((l) => l.endsWith('T04:30:00+05:30')),
      `only the new spec runs: ${locals.join(' ')}`,
    );

    assert.equal((await cp.request('POST', `/schedules/${id}/pause`, token)).status, 200);
    assert.equal((await describeInTemporal(id)).state.paused, true);
    assert.equal((await cp.request('POST', `/schedules/${id}/resume`, token)).status, 200);
    assert.equal((await describeInTemporal(id)).state.paused, false);

    assert.equal((await cp.request('DELETE', `/schedules/${id}`, token)).status, 204);
    await assert.rejects(describeInTemporal(id), ScheduleNotFoundError);
    assert.equal((await cp.request('GET', `/schedules/${id}`, token)).status, 404);
  });

  it('leaves neither side half-changed when Temporal is unreachable or the database refuses the commit', async () => {
    // Temporal away: an API whose Temporal client points at a closed port.
    const deadTemporal = new Client({
      connection: Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: 1000 }),
      namespace: stack.namespace,
    });
    const cutOff = notingAnswers(
      createApp({
        db: cp.db,
        vault: cp.vault,
        storeOf: cp.storeOf,
        temporal: deadTemporal,
        controlTaskQueue: 'unused',
        agentStaleAfterMs: 60_000,
        taskSignals: cp.taskSignals,
        log: createLogger('api', { level: 'silent' }),
      }),
    );
    const res = await cutOff.request(`/environments/${envId}/schedules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ destinationId, cron: '0 5 * * *' }),
    });
    assert.equal(res.status, 503, await res.clone().text());
    assert.match(((await res.json()) as Failure).error.message, /nothing was changed/);
    assert.equal((await cp.db.selectFrom('backup_schedules').selectAll().execute()).length, 0);

    // The database refusing at commit, after Temporal took the schedule: Temporal's copy is undone.
    await sql`create function refuse_schedules() returns trigger language plpgsql as $$ begin raise exception 'refused by test'; end $$`.execute(
      cp.db,
    );
    await sql`create constraint trigger refuse_at_commit after insert or update on backup_schedules deferrable initially deferred for each row execute function refuse_schedules()`.execute(
      cp.db,
    );
    // Other test files' schedules live in the same Temporal: only what appears now counts.
    const existing = new Set<string>();
    for await (const s of cp.temporal.schedule.list()) existing.add(s.scheduleId);
    try {
      const refused = await cp.request<Failure>('POST', `/environments/${envId}/schedules`, token, {
        destinationId,
        cron: '0 6 * * *',
      });
      assert.equal(refused.status, 500);
      assert.equal((await cp.db.selectFrom('backup_schedules').selectAll().execute()).length, 0);
      const listed = [];
      for await (const s of cp.temporal.schedule.list())
        if (s.scheduleId.startsWith('backup-schedule-') && !existing.has(s.scheduleId))
          listed.push(s.scheduleId);
      // The list is Temporal's visibility, updated after the fact: it can still show a schedule deleted
      // a moment ago (a run on PostgreSQL failed here with one listed). What counts is the schedule itself.
      const ours = [];
      for (const id of listed)
        if (
          await cp.temporal.schedule
            .getHandle(id)
            .describe()
            .then(
              () => true,
              (err: unknown) => {
                if (err instanceof ScheduleNotFoundError) return false;
                throw err;
              },
            )
        )
          ours.push(id);
      const rows = new Set(
        (await cp.db.selectFrom('backup_schedules').select('id').execute()).map(
          (r) => `backup-schedule-${r.id}`,
        ),
      );
      assert.deepEqual(
        ours.filter((s) => !rows.has(s)),
        [],
        'no Temporal Schedule without its row',
      );
    } finally {
      await sql`drop trigger refuse_at_commit on backup_schedules`.execute(cp.db);
      await sql`drop function refuse_schedules()`.execute(cp.db);
    }
  });

  it('a scheduled run makes a snapshot, recorded with the run; run now does too', async () => {
    // A daily schedule at the next whole minute (UTC), so it fires within the test.
    const at = new Date(Date.now() + 65_000);
    const created = await cp.request<Schedule>('POST', `/environments/${envId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: `${String(at.getUTCHours()).padStart(2, '0')}:${String(at.getUTCMinutes()).padStart(2, '0')}`,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const done = await waitFor(
      'the scheduled run to make a snapshot',
      async () => {
        const { body } = await cp.request<Schedule>('GET', `/schedules/${id}`, token);
        const run = body.recentRuns.find((r) => r.status !== 'running');
        return run;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.ok(done.snapshotId);
    const listed = await cp.request<{ snapshots: { id: string }[] }>(
      'GET',
      `/environments/${envId}/snapshots`,
      token,
    );
    assert.ok(listed.body.snapshots.some((s) => s.id === done.snapshotId));
    const op = await cp.request<{ workflowId: string; status: string }>(
      'GET',
      `/operations/${done.operationId}`,
      token,
    );
    assert.equal(op.body.status, 'succeeded');
    // The run carries the search attributes of a manual backup, and so is found like one.
    const found = [];
    for await (const w of cp.temporal.workflow.list({
      query: `StracktEnvironment = '${envId}' AND StracktOperation = 'backup'`,
    }))
      found.push(w.workflowId);
    assert.ok(found.includes(op.body.workflowId), `${op.body.workflowId} in ${found.join(' ')}`);
    const summary = await (
      await cp.temporal.workflow.getHandle(op.body.workflowId).describe()
    ).staticSummary();
    assert.match(summary ?? '', new RegExp(`^backup of \\S+ on \\S+ to ${destinationId}$`));

    // Run now, once the scheduled run's workflow has closed (overlap "skip" would drop it otherwise).
    const nominal = done.nominalAt.replace('.000Z', 'Z');
    await cp.temporal.workflow.getHandle(`scheduled-backup-${id}-${nominal}`).result();
    assert.equal((await cp.request('POST', `/schedules/${id}/trigger`, token)).status, 202);
    await waitFor(
      'run now to make a second snapshot',
      async () => {
        const { body } = await cp.request<Schedule>('GET', `/schedules/${id}`, token);
        return body.recentRuns.filter((r) => r.status === 'succeeded').length >= 2 || undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );

    // Retention on the schedule's two real snapshots: keep-last 1 deletes the older, unless pinned.
    type Preview = {
      kept: number;
      deleted: number;
      snapshots: { id: string; keep: boolean; reasons: string[] }[];
    };
    const lastOne = await cp.request<Preview>('POST', `/schedules/${id}/retention/preview`, token, {
      retention: { last: 1 },
    });
    assert.equal(lastOne.status, 200, JSON.stringify(lastOne.body));
    assert.deepEqual([lastOne.body.kept, lastOne.body.deleted], [1, 1]);
    assert.deepEqual(lastOne.body.snapshots[0]!.reasons, ['last 1']);
    const older = lastOne.body.snapshots[1]!;
    assert.equal(older.id, done.snapshotId, 'the scheduled run made the older one');
    const pinned = await cp.request<{ pinned: boolean }>('PATCH', `/snapshots/${older.id}`, token, {
      pinned: true,
    });
    assert.equal(pinned.body.pinned, true);
    const withPin = await cp.request<Preview>('POST', `/schedules/${id}/retention/preview`, token, {
      retention: { last: 1 },
    });
    assert.deepEqual(withPin.body.snapshots[1]!.reasons, ['pinned']);
    assert.equal(withPin.body.deleted, 0);
  });

  it('refuses run now while a run of the schedule is going, under overlap skip', async () => {
    const servers = await cp.request<{ servers: { id: string }[] }>('GET', '/servers', token);
    const slowEnvId = await cp.deployWebEnvironment(token, servers.body.servers[0]!.id, {
      backupHooks: { pre: 'sleep 4' },
    });
    const created = await cp.request<Schedule>('POST', `/environments/${slowEnvId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: '04:00',
    });
    const id = created.body.id;
    assert.equal((await cp.request('POST', `/schedules/${id}/trigger`, token)).status, 202);
    await waitFor('the run to be going', async () => {
      const { body } = await cp.request<Schedule>('GET', `/schedules/${id}`, token);
      return body.recentRuns.some((r) => r.status === 'running') || undefined;
    });
    const again = await cp.request<Failure>('POST', `/schedules/${id}/trigger`, token);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.match(again.body.error.message, /still going.*skip/);
    const finished = await waitFor(
      'the run to end',
      async () => {
        const { body } = await cp.request<Schedule>('GET', `/schedules/${id}`, token);
        return body.recentRuns.every((r) => r.status !== 'running') ? body.recentRuns : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(
      finished.map((r) => r.status),
      ['succeeded'],
    );
  });

  it('opens a scheduled run in one statement: a retry finds what it made, a running backup makes it skipped', async () => {
    const servers = await cp.request<{ servers: { id: string }[] }>('GET', '/servers', token);
    const ownEnvId = await cp.deployWebEnvironment(token, servers.body.servers[0]!.id);
    const created = await cp.request<Schedule>('POST', `/environments/${ownEnvId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: '05:00',
    });
    const scheduleId = created.body.id;
    const told: string[] = [];
    const activities = createScheduleActivities({
      db: cp.db,
      notify: async ({ event, subject }) => void told.push(`${event} ${subject}`),
      agentStaleAfterMs: 60_000,
    });
    const first = '2026-03-01T05:00:00.000Z';

    const opened = await activities.beginScheduledRun({ scheduleId, nominalAt: first });
    assert.ok(opened.start, JSON.stringify(opened));
    assert.equal(opened.workflowId, operationWorkflowId('backup', ownEnvId, new Date(first)));
    const { name } = await cp.db
      .selectFrom('environments')
      .select('name')
      .where('id', '=', ownEnvId)
      .executeTakeFirstOrThrow();
    assert.deepEqual(opened.labels, { environmentName: name, serverName: 'a' });
    const operation = await cp.db
      .selectFrom('operations')
      .select(['status', 'workflow_id'])
      .where('id', '=', opened.input.operationId)
      .executeTakeFirstOrThrow();
    assert.deepEqual(operation, { status: 'pending', workflow_id: opened.workflowId });

    // The activity retried after its first try wrote: the same operation, no second one.
    const retried = await activities.beginScheduledRun({ scheduleId, nominalAt: first });
    assert.deepEqual(retried, opened);
    const ofEnvironment = await cp.db
      .selectFrom('operations')
      .select('id')
      .where('environment_id', '=', ownEnvId)
      .where('kind', '=', 'backup')
      .execute();
    assert.deepEqual(ofEnvironment, [{ id: opened.input.operationId }]);

    // The next run while that operation is still pending: skipped, told, and nothing half-made.
    const second = '2026-03-02T05:00:00.000Z';
    const skipped = await activities.beginScheduledRun({ scheduleId, nominalAt: second });
    assert.equal(skipped.start, false);
    assert.match(
      skipped.reason,
      new RegExp(
        `^skipped: a backup of this environment is already running: operation ${opened.input.operationId}$`,
      ),
    );
    const runs = await cp.db
      .selectFrom('schedule_runs')
      .select(['nominal_at', 'status', 'operation_id'])
      .where('schedule_id', '=', scheduleId)
      .orderBy('nominal_at')
      .execute();
    assert.deepEqual(
      runs.map((r) => [r.nominal_at.toISOString(), r.status, r.operation_id]),
      [
        [first, 'running', opened.input.operationId],
        [second, 'skipped', null],
      ],
    );
    assert.deepEqual(told, [`backup.missed ${scheduleId}@${second}`]);
    // Asked again, the skipped run stays skipped and is not told twice.
    const again = await activities.beginScheduledRun({ scheduleId, nominalAt: second });
    assert.deepEqual(again, skipped);
    assert.equal(told.length, 1);

    await cp.db
      .updateTable('operations')
      .set({ status: 'failed' })
      .where('id', '=', opened.input.operationId)
      .execute();

    // Two tries of one run at once (a local activity timed out and retried while its first try runs):
    // one opens it, the other finds what it opened.
    const third = '2026-03-03T05:00:00.000Z';
    const [a, b] = await Promise.all([
      activities.beginScheduledRun({ scheduleId, nominalAt: third }),
      activities.beginScheduledRun({ scheduleId, nominalAt: third }),
    ]);
    assert.ok(a.start, JSON.stringify(a));
    assert.deepEqual(b, a);
    await cp.db
      .updateTable('operations')
      .set({ status: 'failed' })
      .where('id', '=', a.input.operationId)
      .execute();

    // The run's row made between the read and the write (the sweep calling it missed): nothing written.
    const fourth = new Date('2026-03-04T05:00:00.000Z');
    await beginRun(cp.db, { scheduleId, nominalAt: fourth, status: 'missed', error: 'it never started' });
    const workflowId = operationWorkflowId('backup', ownEnvId, fourth);
    const { team_id: teamId } = await cp.db
      .selectFrom('backup_schedules')
      .select('team_id')
      .where('id', '=', scheduleId)
      .executeTakeFirstOrThrow();
    const late = await openScheduledRun(
      cp.db,
      { teamId, environmentId: ownEnvId, serverId: servers.body.servers[0]!.id, kind: 'backup', workflowId },
      { scheduleId, nominalAt: fourth },
    );
    assert.equal(late, undefined);
    assert.equal(
      (await cp.db.selectFrom('operations').select('id').where('workflow_id', '=', workflowId).execute())
        .length,
      0,
      'no operation without its run',
    );
    const deleted = await cp.request('DELETE', `/schedules/${scheduleId}`, token);
    assert.equal(deleted.status, 204);
    assert.deepEqual(await activities.beginScheduledRun({ scheduleId, nominalAt: second }), {
      start: false,
      reason: 'the schedule was deleted',
    });
  });

  it('saves a retention rule, says it in words, and previews it on a simulated series of the schedule’s runs', async () => {
    const empty = await cp.request<Failure>('POST', `/environments/${envId}/schedules`, token, {
      destinationId,
      preset: 'daily',
      at: '03:00',
      retention: {},
    });
    assert.equal(empty.status, 422);
    assert.equal(empty.body.error.field, 'retention');
    const created = await cp.request<Schedule & { retentionInWords: string }>(
      'POST',
      `/environments/${envId}/schedules`,
      token,
      {
        destinationId,
        preset: 'daily',
        at: '03:00',
        timezone: 'Europe/Berlin',
        retention: { last: 2, daily: 5, weekly: 3 },
      },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.match(
      created.body.retentionInWords,
      /the last 2, one a day for 5 days .* and one a week for 3 weeks/,
    );
    const preview = await cp.request<{
      kept: number;
      deleted: number;
      snapshots: { keep: boolean; reasons: string[]; local: string }[];
    }>('POST', `/schedules/${created.body.id}/retention/preview`, token, { simulateDays: 30 });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    const { snapshots } = preview.body;
    assert.ok(snapshots.length >= 29 && snapshots.length <= 30, `${snapshots.length} simulated daily runs`);
    assert.ok(
      snapshots.every((s) => s.local.endsWith('T03:00:00+01:00')),
      'runs at 03:00 Berlin time',
    );
    assert.deepEqual(snapshots[0]!.reasons.slice(0, 2), [
      'last 1',
      'daily ' + snapshots[0]!.local.slice(0, 10),
    ]);
    assert.ok(
      snapshots.slice(0, 5).every((s) => s.keep),
      'the five newest days are kept',
    );
    const weeklyOnly = snapshots.slice(5).filter((s) => s.keep);
    assert.ok(weeklyOnly.length >= 1 && weeklyOnly.length <= 2, JSON.stringify(weeklyOnly));
    assert.ok(weeklyOnly.every((s) => s.reasons.length === 1 && s.reasons[0]!.startsWith('weekly ')));
    assert.equal(preview.body.kept + preview.body.deleted, snapshots.length);
  });
});

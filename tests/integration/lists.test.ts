import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
// First: the app extends zod with .openapi(), which schemas made before it lack (destination-spec's).
import { startControlPlane, type ApiError, type ControlPlane } from '../helpers/control-plane.ts';
import { newId } from '../../common/ids.ts';
import { createDestination } from '../../db/destinations.data.ts';
import { createOperation } from '../../db/operations.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createApiToken, createTeam } from '../../db/teams.data.ts';
import { enqueueDeliveries } from '../../db/webhooks.data.ts';
import { startAgent, type ProgramRun } from '../helpers/processes.ts';
import { httpService } from '../helpers/services.ts';
import { stack, uniqueName } from '../helpers/stack.ts';

interface Listed {
  id: string;
}
type Page = Record<string, unknown> & { next: string | null };
interface Operation {
  id: string;
  kind: string;
  status: string;
  environmentId: string;
  serverId: string;
  createdAt: string;
  workflowId: string;
}

describe('lists: cursor pages on every list, snapshot and operation views, run now', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let dataRoot: string;
  let teamId: string;
  let token: string;
  let otherToken: string;
  let serverId: string;
  let destinationId: string;
  let envId: string;

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, uniqueName('listers'));
    teamId = team.team.id;
    token = team.token;
    otherToken = (await createTeam(cp.db, uniqueName('others'))).token;
    const server = await createServer(cp.db, teamId, 'a');
    serverId = server.server.id;
    dataRoot = join(stack.runDir, uniqueName('agent'));
    agent = startAgent(cp.apiUrl, server.agentToken, dataRoot);
    ({ destinationId } = await cp.addDestination(token));
    await cp.connected(token, serverId);
    envId = await cp.deployWebEnvironment(token, serverId);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
  });

  /** A request through app.request() whose headers the test reads too. */
  async function raw(method: string, path: string, auth = token, body?: unknown) {
    const res = await cp.app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${auth}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, location: res.headers.get('location'), body: (await res.json()) as never };
  }

  /** Follows `next` from the first page to the last: every item in order, each page checked on the way. */
  async function walk<T extends Listed>(
    path: string,
    key: string,
    limit: number,
    between?: (pageNumber: number) => Promise<void>,
  ): Promise<T[]> {
    const items: T[] = [];
    let url: string | null = `${path}${path.includes('?') ? '&' : '?'}limit=${limit}`;
    for (let n = 1; url; n++) {
      const { status, body }: { status: number; body: Page } = await cp.request<Page>('GET', url, token);
      assert.equal(status, 200, `${url}: ${JSON.stringify(body)}`);
      const page = body[key] as T[];
      assert.ok(page.length <= limit, `${url}: ${page.length} items, limit ${limit}`);
      if (body.next) assert.equal(page.length, limit, `${url}: a page short of the limit is the last`);
      items.push(...page);
      url = body.next;
      if (url) await between?.(n);
    }
    const ids = items.map((i) => i.id);
    assert.equal(new Set(ids).size, ids.length, `${path}: an item repeated across pages`);
    return items;
  }

  it('pagination walks 120 snapshots in pages of 50 with nothing missed or repeated while a backup adds one', async () => {
    const real = await cp.backUp(token, envId, destinationId);
    // The real one's row, but for the volumes its agent reported: the rows below stand for older snapshots.
    const { volumes: _volumes, ...template } = await cp.db
      .selectFrom('snapshots')
      .selectAll()
      .where('id', '=', real.id)
      .executeTakeFirstOrThrow();
    // 119 more, older than the real one (row i is the list's i+1th), with the pages' edges where a
    // cursor goes wrong: rows 45 to 55 share one instant to the microsecond, so only the id orders them
    // across the first edge; rows 99 and 100 differ by microseconds within one millisecond, which a
    // cursor holding a JS Date would round away at the second edge.
    const base = Date.now() - 3_600_000;
    const micros = (ms: number, us: number) =>
      new Date(ms).toISOString().replace('Z', `${String(us).padStart(3, '0')}Z`);
    const createdAt = (i: number) =>
      i >= 44 && i <= 54
        ? micros(base - 44_000, 456)
        : i === 98 || i === 99
          ? micros(base - 98_000, i === 98 ? 900 : 100)
          : micros(base - i * 1000, (i * 7) % 1000);
    for (let i = 0; i < 119; i++) {
      const at = createdAt(i);
      await cp.db
        .insertInto('snapshots')
        .values({
          ...template,
          id: newId('snap'),
          operation_id: newId('op'),
          data_key: `inserted/${i}/data`,
          manifest_key: `inserted/${i}/manifest`,
          // Bound as text: postgres.js sends a timestamptz parameter through a JS Date, dropping microseconds.
          created_at: sql<Date>`${at}::text::timestamptz`,
          completed_at: new Date(),
          pinned: false,
          verified_at: null,
          verification: null,
          verification_error: null,
          deleted_at: null,
        } as never)
        .execute();
    }
    const before = await walk<Listed>(`/environments/${envId}/snapshots`, 'snapshots', 200);
    assert.equal(before.length, 120);

    let backupId = '';
    const walked = await walk<Listed>(`/environments/${envId}/snapshots`, 'snapshots', 50, async (n) => {
      if (n !== 1) return;
      // Between the first and the second page, a real backup adds the newest snapshot.
      const started = await cp.request<{ id: string }>('POST', `/environments/${envId}/backups`, token, {
        destinationId,
      });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      backupId = started.body.id;
      assert.equal((await cp.finished(token, backupId, 180_000)).status, 'succeeded');
    });
    assert.deepEqual(
      walked.map((s) => s.id),
      before.map((s) => s.id),
      'the walk saw exactly the 120 snapshots there were when it began, in order',
    );
    const after = await walk<Listed>(`/environments/${envId}/snapshots`, 'snapshots', 50);
    assert.equal(after.length, 121);
    const added = await cp.db
      .selectFrom('snapshots')
      .select('id')
      .where('operation_id', '=', backupId)
      .executeTakeFirstOrThrow();
    assert.equal(after[0]!.id, added.id, 'the new snapshot comes first, newest first');
    assert.deepEqual(
      after.slice(1).map((s) => s.id),
      before.map((s) => s.id),
    );
  });

  it('shows one snapshot with its sizes and volumes, to its own team only', async () => {
    const { body: list } = await cp.request<{ snapshots: { id: string; operationId?: string }[] }>(
      'GET',
      `/environments/${envId}/snapshots?limit=1`,
      token,
    );
    const id = list.snapshots[0]!.id;
    const own = await cp.request<{
      id: string;
      sizeBytes: number;
      tarBytes: number;
      entries: number;
      volumes: { name: string; entries: number; bytes: number }[] | null;
    }>('GET', `/snapshots/${id}`, token);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.equal(own.body.id, id);
    assert.ok(own.body.sizeBytes > 0 && own.body.tarBytes > 0);
    assert.equal(own.body.volumes?.length, 1, JSON.stringify(own.body.volumes));
    const [webdata] = own.body.volumes!;
    assert.equal(webdata!.name, 'webdata');
    // The service writes its pid file there: one folder and one small file at least.
    assert.ok(webdata!.entries >= 2 && webdata!.bytes > 0, JSON.stringify(webdata));
    assert.equal(webdata!.entries, own.body.entries, 'its one volume holds every entry');

    const inserted = await cp.db
      .selectFrom('snapshots')
      .select('id')
      .where('data_key', '=', 'inserted/0/data')
      .executeTakeFirstOrThrow();
    const old = await cp.request<{ volumes: unknown }>('GET', `/snapshots/${inserted.id}`, token);
    assert.equal(old.body.volumes, null, 'a snapshot whose agent reported no volumes says so');

    const theirs = await cp.request<ApiError>('GET', `/snapshots/${id}`, otherToken);
    assert.equal(theirs.status, 404);
    assert.equal(theirs.body.error.code, 'snapshot_not_found');
    assert.equal((await cp.request('GET', '/snapshots/snap_nosuchsnapshot1', token)).status, 404);
  });

  it('walks every other list with a small limit and answers 201s with where the resource is', async () => {
    // Environments (two more), each 201 with its Location.
    for (const name of ['e-one', 'e-two']) {
      const made = await raw('POST', '/environments', token, { name, serverId, services: [httpService(1)] });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.equal(made.location, `/environments/${(made.body as Listed).id}`);
    }
    assert.equal((await walk('/environments', 'environments', 1)).length, 3);

    const addedServer = await raw('POST', '/servers', token, { name: 'b' });
    assert.equal(addedServer.status, 201);
    const newServerId = (addedServer.body as { server: Listed }).server.id;
    assert.equal(addedServer.location, `/servers/${newServerId}`);
    await createServer(cp.db, teamId, 'c');
    const servers = await walk<Listed>('/servers', 'servers', 2);
    assert.equal(servers.length, 3);
    assert.equal(servers[servers.length - 1]!.id, serverId, 'the oldest last');

    for (const name of ['d-one', 'd-two'])
      await createDestination(
        cp.db,
        cp.vault,
        teamId,
        {
          name,
          endpoint: 'http://127.0.0.1:9',
          region: 'us-east-1',
          bucket: name,
          prefix: '',
          pathStyle: true,
          accessKeyId: 'AKID',
          secretAccessKey: 'SECRET',
        },
        new Date(),
      );
    assert.equal((await walk('/destinations', 'destinations', 2)).length, 3);

    const hooks: string[] = [];
    for (let i = 0; i < 3; i++) {
      const made = await raw('POST', '/webhooks', token, { url: `http://127.0.0.1:9/hook-${i}` });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      hooks.push((made.body as { webhook: Listed }).webhook.id);
      assert.equal(made.location, `/webhooks/${hooks[i]}`);
    }
    assert.deepEqual(
      (await walk<Listed>('/webhooks', 'webhooks', 2)).map((w) => w.id),
      [...hooks].reverse(),
    );
    for (let i = 0; i < 5; i++)
      await enqueueDeliveries(cp.db, teamId, 'backup.failed', `subject-${i}`, { n: i });
    assert.equal((await walk(`/webhooks/${hooks[0]}/deliveries`, 'deliveries', 2)).length, 5);

    const madeToken = await raw('POST', '/team/tokens', token, { name: 'ci' });
    assert.equal(madeToken.status, 201);
    assert.equal(madeToken.location, `/team/tokens/${(madeToken.body as Listed).id}`);
    await createApiToken(cp.db, teamId, 'another');
    assert.equal((await walk('/team/tokens', 'tokens', 1)).length, 3);

    const schedules: string[] = [];
    for (const cron of ['0 0 1 1 *', '0 0 2 1 *', '0 0 3 1 *']) {
      const made = await raw('POST', `/environments/${envId}/schedules`, token, {
        cron,
        destinationId,
        enabled: false,
      });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      schedules.push((made.body as Listed).id);
      assert.equal(made.location, `/schedules/${schedules.at(-1)}`);
    }
    assert.deepEqual(
      (await walk<Listed>(`/environments/${envId}/schedules`, 'schedules', 2)).map((s) => s.id),
      [...schedules].reverse(),
    );

    // Missed runs: two schedules missed at the same instant (told apart by schedule), and more.
    const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1, 0, minutes));
    const missed = [
      { schedule: 0, at: at(0) },
      { schedule: 1, at: at(0) },
      { schedule: 2, at: at(0) },
      { schedule: 0, at: at(5) },
      { schedule: 1, at: at(10) },
    ];
    for (const m of missed)
      await cp.db
        .insertInto('schedule_runs')
        .values({
          schedule_id: schedules[m.schedule]!,
          nominal_at: m.at,
          status: 'missed',
          operation_id: null,
          snapshot_id: null,
          error: 'never started',
          finished_at: new Date(),
        })
        .execute();
    const walkedMissed: { scheduleId: string; nominalAt: string }[] = [];
    let next: string | null = `/environments/${envId}/missed-backups?limit=2`;
    while (next) {
      type MissedPage = { missedBackups: typeof walkedMissed; next: string | null };
      const { body }: { body: MissedPage } = await cp.request<MissedPage>('GET', next, token);
      walkedMissed.push(...body.missedBackups);
      next = body.next;
    }
    assert.deepEqual(
      walkedMissed.map((m) => `${m.scheduleId}@${m.nominalAt}`),
      [
        `${schedules[1]}@${at(10).toISOString()}`,
        `${schedules[0]}@${at(5).toISOString()}`,
        ...[...schedules]
          .sort()
          .reverse()
          .map((s) => `${s}@${at(0).toISOString()}`),
      ],
    );
    for (const id of schedules)
      assert.equal((await cp.request('DELETE', `/schedules/${id}`, token)).status, 204);

    // The environment's operations: its deploy and its two backups.
    const ops = await walk<Operation>(`/environments/${envId}/operations`, 'operations', 1);
    assert.deepEqual(
      ops.map((o) => o.kind),
      ['backup', 'backup', 'deploy'],
    );
  });

  it('refuses a bad limit or cursor with 422 naming the field', async () => {
    const path = `/environments/${envId}/snapshots`;
    const forged = Buffer.from(JSON.stringify(['2026-11-30T10:00:00.000000Z', "x' or '1'='1"])).toString(
      'base64url',
    );
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=ten', 'limit'],
      ['limit=2.5', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      ['cursor=%25%00', 'cursor'],
      [`cursor=${forged}`, 'cursor'],
      [`cursor=${Buffer.from('[1,2]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('["2026-02-30T10:00:00.000000Z","snap_x"]').toString('base64url')}`, 'cursor'],
    ] as const) {
      for (const list of [path, '/servers', '/operations']) {
        const res = await cp.request<ApiError>('GET', `${list}?${query}`, token);
        assert.equal(res.status, 422, `${list}?${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.field, field, `${list}?${query}`);
      }
    }
    const full = await cp.request<Page>('GET', `${path}?limit=200`, token);
    assert.equal((full.body.snapshots as unknown[]).length, 121);
    assert.equal(full.body.next, null);
    const byDefault = await cp.request<Page>('GET', path, token);
    assert.equal((byDefault.body.snapshots as unknown[]).length, 50);
    assert.match(byDefault.body.next!, new RegExp(`^${path}\\?limit=50&cursor=[A-Za-z0-9_-]+$`));
  });

  it('lists the team’s operations, each filter narrowing them, and refuses bad filters naming the field', async () => {
    // An operation of another environment on another server, recorded as a finished stop.
    const other = await createServer(cp.db, teamId, uniqueName('z'));
    const otherEnv = await raw('POST', '/environments', token, {
      name: 'elsewhere',
      serverId: other.server.id,
      services: [httpService(1)],
    });
    const stop = await createOperation(cp.db, {
      teamId,
      environmentId: (otherEnv.body as Listed).id,
      serverId: other.server.id,
      kind: 'stop',
      workflowId: uniqueName('stop'),
    });
    await cp.db
      .updateTable('operations')
      .set({ status: 'failed', finished_at: new Date() })
      .where('id', '=', stop.id)
      .execute();

    const all = await walk<Operation>('/operations', 'operations', 2);
    assert.equal(all.length, 4, JSON.stringify(all.map((o) => o.kind)));
    const narrowed = async (query: string, holds: (o: Operation) => boolean) => {
      const found = await walk<Operation>(`/operations?${query}`, 'operations', 1);
      assert.ok(found.length > 0 && found.length < all.length, `${query}: ${found.length} of ${all.length}`);
      assert.ok(found.every(holds), query);
      assert.deepEqual(
        found.map((o) => o.id),
        all.filter(holds).map((o) => o.id),
        query,
      );
    };
    await narrowed('kind=backup', (o) => o.kind === 'backup');
    await narrowed('status=failed', (o) => o.status === 'failed');
    await narrowed(`environmentId=${envId}`, (o) => o.environmentId === envId);
    await narrowed(`serverId=${other.server.id}`, (o) => o.serverId === other.server.id);
    const since = all[1]!.createdAt;
    await narrowed(`since=${encodeURIComponent(since)}`, (o) => o.createdAt >= since);
    await narrowed(
      `kind=backup&environmentId=${envId}`,
      (o) => o.kind === 'backup' && o.environmentId === envId,
    );
    assert.equal((await walk('/operations?environmentId=env_ofnoteamatall', 'operations', 5)).length, 0);
    const theirs = await cp.request<Page>('GET', '/operations', otherToken);
    assert.deepEqual(theirs.body.operations, [], 'another team sees none of them');

    for (const [query, field] of [
      ['kind=nap', 'kind'],
      ['status=done', 'status'],
      ['environmentId=a%20b', 'environmentId'],
      ['serverId=%27', 'serverId'],
      ['since=yesterday', 'since'],
      ['since=2026-12-01', 'since'],
    ] as const) {
      const res = await cp.request<ApiError>('GET', `/operations?${query}`, token);
      assert.equal(res.status, 422, `${query}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.field, field, query);
    }
  });

  it('answers run now with the operation it started, which then finishes; 202s say where to follow them', async () => {
    const made = await cp.request<Listed>('POST', `/environments/${envId}/schedules`, token, {
      cron: '0 0 1 1 *',
      destinationId,
    });
    const triggered = await raw('POST', `/schedules/${made.body.id}/trigger`);
    assert.equal(triggered.status, 202, JSON.stringify(triggered.body));
    const op = triggered.body as Operation;
    assert.equal(op.kind, 'backup');
    assert.equal(op.environmentId, envId);
    assert.equal(triggered.location, `/operations/${op.id}`);
    const run = await cp.db
      .selectFrom('schedule_runs')
      .selectAll()
      .where('schedule_id', '=', made.body.id)
      .executeTakeFirstOrThrow();
    assert.equal(run.operation_id, op.id, 'the operation of the run the trigger started');
    assert.equal((await cp.finished(token, op.id, 180_000)).status, 'succeeded');
    await cp.temporal.workflow
      .getHandle(`scheduled-backup-${made.body.id}-${run.nominal_at.toISOString().replace('.000Z', 'Z')}`)
      .result();

    // Every other 202 that starts an operation names it too.
    const backup = await raw('POST', `/environments/${envId}/backups`, token, { destinationId });
    assert.equal(backup.status, 202, JSON.stringify(backup.body));
    assert.equal(backup.location, `/operations/${(backup.body as Listed).id}`);
    assert.equal((await cp.finished(token, (backup.body as Listed).id, 180_000)).status, 'succeeded');
    const { body } = await cp.request<{ snapshots: Listed[] }>(
      'GET',
      `/environments/${envId}/snapshots?limit=1`,
      token,
    );
    const verify = await raw('POST', `/snapshots/${body.snapshots[0]!.id}/verify`, token, {});
    assert.equal(verify.status, 202, JSON.stringify(verify.body));
    assert.equal(verify.location, `/operations/${(verify.body as Listed).id}`);
    assert.equal((await cp.finished(token, (verify.body as Listed).id)).status, 'succeeded');
    const deploy = await raw('POST', `/environments/${envId}/deploy`);
    assert.equal(deploy.status, 202);
    assert.equal(deploy.location, `/operations/${(deploy.body as Listed).id}`);
    assert.equal((await cp.finished(token, (deploy.body as Listed).id)).status, 'succeeded');
    assert.equal((await cp.request('DELETE', `/schedules/${made.body.id}`, token)).status, 204);
  });
});

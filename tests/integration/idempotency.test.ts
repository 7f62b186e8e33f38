import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import type { ProgramRun } from '../helpers/processes.ts';
import { stack, uniqueName } from '../helpers/stack.ts';

interface Body {
  id: string;
  token: string;
  error: { code: string; field?: string };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Body;
}

describe('Idempotency-Key: a retried POST does its work once', () => {
  let cp: ControlPlane;
  let agent: ProgramRun;
  let token: string;
  let teamId: string;
  let serverId: string;
  let destinationId: string;
  let envId: string;
  const dataRoot = join(stack.runDir, uniqueName('idempotency-agent'));

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'retriers');
    token = team.token;
    teamId = team.team.id;
    ({ id: serverId, agent } = await cp.addServer(token, teamId, 'a', { root: dataRoot }));
    ({ destinationId } = await cp.addDestination(token));
    envId = await cp.deployWebEnvironment(token, serverId);
  });

  after(async () => {
    await agent?.kill();
    await cp?.stopServices(dataRoot);
    await cp?.stop();
    await rm(dataRoot, { recursive: true, force: true });
  });

  async function post(path: string, key: string | undefined, body: unknown, bearer = token): Promise<Answer> {
    const res = await cp.app.request(path, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        ...(key !== undefined && { 'idempotency-key': key }),
      },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Body };
  }

  const backupsOfEnv = async () =>
    Number(
      (
        await cp.db
          .selectFrom('operations')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('environment_id', '=', envId)
          .where('kind', '=', 'backup')
          .executeTakeFirstOrThrow()
      ).n,
    );

  const tokensOfTeam = async () =>
    (await cp.request<{ tokens: unknown[] }>('GET', '/team/tokens', token)).body.tokens.length;

  it('answers a retried backup start with the first operation, before and after it ends, and starts nothing new', async () => {
    const before = await backupsOfEnv();
    const first = await post(`/environments/${envId}/backups`, 'backup-1', { destinationId });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const retried = await post(`/environments/${envId}/backups`, 'backup-1', { destinationId });
    assert.equal(retried.status, 202);
    assert.equal(retried.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(retried.body, first.body);
    const done = await cp.finished(token, first.body.id);
    assert.equal(done.status, 'succeeded');
    // The case the key exists for: a client that timed out retries after the first backup ended.
    const late = await post(`/environments/${envId}/backups`, 'backup-1', { destinationId });
    assert.equal(late.status, 202);
    assert.equal(late.body.id, first.body.id);
    assert.equal(await backupsOfEnv(), before + 1, 'one backup for three requests');
    // Without a key, the same request is a new backup, as before.
    const unkeyed = await post(`/environments/${envId}/backups`, undefined, { destinationId });
    assert.equal(unkeyed.status, 202);
    assert.notEqual(unkeyed.body.id, first.body.id);
    await cp.finished(token, unkeyed.body.id);
  });

  it('refuses the key with another body or another path (422 naming the header), and changes nothing', async () => {
    const made = await post('/team/tokens', 'token-a', { name: 'ci' });
    assert.equal(made.status, 201);
    const count = await tokensOfTeam();
    const otherBody = await post('/team/tokens', 'token-a', { name: 'deploy bot' });
    assert.equal(otherBody.status, 422);
    assert.equal(otherBody.body.error.code, 'idempotency_key_reused');
    assert.equal(otherBody.body.error.field, 'Idempotency-Key');
    const otherPath = await post(`/environments/${envId}/backups`, 'token-a', { destinationId });
    assert.equal(otherPath.status, 422);
    assert.equal(otherPath.body.error.code, 'idempotency_key_reused');
    assert.equal(await tokensOfTeam(), count);
    assert.equal(await backupsOfEnv(), 2, 'no backup started by the refused request');
  });

  it('keeps no answer that holds a secret: the retry is told the key was used, and nothing is created twice', async () => {
    const count = await tokensOfTeam();
    const made = await post('/team/tokens', 'token-b', { name: 'shown once' });
    assert.equal(made.status, 201);
    assert.equal(made.headers.get('cache-control'), 'no-store');
    const secret: string = made.body.token;
    const retried = await post('/team/tokens', 'token-b', { name: 'shown once' });
    assert.equal(retried.status, 409);
    assert.equal(retried.body.error.code, 'idempotent_answer_withheld');
    assert.ok(!JSON.stringify(retried.body).includes(secret));
    assert.equal(await tokensOfTeam(), count + 1);
    const kept = await cp.db.selectFrom('idempotency_keys').selectAll().execute();
    assert.ok(kept.length > 0);
    assert.ok(!JSON.stringify(kept).includes(secret), 'the token is nowhere in the kept answers');

    const webhook = await post('/webhooks', 'hook-1', { url: 'https://hooks.example.com/strackt' });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    const again = await post('/webhooks', 'hook-1', { url: 'https://hooks.example.com/strackt' });
    assert.equal(again.status, 409);
    const rows = await cp.db
      .selectFrom('idempotency_keys')
      .select('body')
      .where('key', '=', 'hook-1')
      .execute();
    assert.deepEqual(rows, [{ body: null }]);
  });

  it('keeps nothing of a request that failed: the corrected retry with the same key runs', async () => {
    const wrong = await post(`/environments/${envId}/backups`, 'backup-2', { destinationId: 'dst_nope' });
    assert.equal(wrong.status, 404);
    const right = await post(`/environments/${envId}/backups`, 'backup-2', { destinationId });
    assert.equal(right.status, 202, JSON.stringify(right.body));
    assert.equal((await cp.finished(token, right.body.id)).status, 'succeeded');
  });

  it('runs two requests racing with one key once: the other is answered the first result or told to retry', async () => {
    const before = await backupsOfEnv();
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => post(`/environments/${envId}/backups`, 'backup-3', { destinationId })),
    );
    const started = answers.filter((a) => a.status === 202);
    assert.ok(started.length >= 1);
    assert.equal(new Set(started.map((a) => a.body.id)).size, 1, 'one operation for all');
    for (const a of answers.filter((a) => a.status !== 202)) {
      assert.equal(a.status, 409, JSON.stringify(a.body));
      assert.equal(a.body.error.code, 'idempotency_key_in_use');
    }
    await cp.finished(token, started[0]!.body.id);
    assert.equal(await backupsOfEnv(), before + 1);
  });

  it('frees a key after 24 hours', async () => {
    const first = await post(`/environments/${envId}/backups`, 'backup-4', { destinationId });
    assert.equal(first.status, 202);
    await cp.finished(token, first.body.id);
    await cp.db
      .updateTable('idempotency_keys')
      .set({ created_at: sql<Date>`now() - interval '25 hours'` })
      .where('key', '=', 'backup-4')
      .execute();
    const later = await post(`/environments/${envId}/backups`, 'backup-4', { destinationId });
    assert.equal(later.status, 202);
    assert.notEqual(later.body.id, first.body.id, 'a new backup');
    await cp.finished(token, later.body.id);
  });

  it('keeps keys per team, and refuses a malformed key naming the header', async () => {
    const other = await createTeam(cp.db, 'others');
    const theirs = await post('/team/tokens', 'token-a', { name: 'theirs' }, other.token);
    assert.equal(theirs.status, 201, 'another team’s key of the same name is its own');
    for (const bad of ['', 'a b', 'x'.repeat(256), 'clé']) {
      const res = await cp.app.request('/team/tokens', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': bad,
        },
        body: JSON.stringify({ name: 'never' }),
      });
      assert.equal(res.status, 422, `key ${JSON.stringify(bad)}`);
      assert.equal(((await res.json()) as Body).error.field, 'Idempotency-Key');
    }
  });
});

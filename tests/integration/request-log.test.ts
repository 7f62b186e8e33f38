import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { createApp } from '../../api/app.ts';
import type { LogLevel } from '../../common/config.ts';
import { createTaskSignals, type TaskSignals } from '../../db/agent-task-signals.ts';
import { createDb } from '../../db/database.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { Vault } from '../../db/vault.ts';
import { destinationStores } from '../../db/destination-stores.ts';
import { capturedLogger, type LogLine } from '../helpers/log-lines.ts';
import { connectTestClient, createTestDatabase, stack } from '../helpers/stack.ts';

interface ErrorAnswer {
  error: { code: string; message: string; requestId: string };
}

/** The API's request ids and access log, through app.request() on the real database. */
describe('request ids and the access log', () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let temporal: Client;
  let taskSignals: TaskSignals;
  let token: string;
  let agentToken: string;

  const appLogging = (level: LogLevel, db = testDb.db) => {
    const captured = capturedLogger('api', level);
    const vault = new Vault(randomBytes(32));
    const app = createApp({
      db,
      vault,
      storeOf: destinationStores(db, vault),
      temporal,
      controlTaskQueue: 'unused',
      agentStaleAfterMs: 60_000,
      taskSignals,
      log: captured.log,
    });
    return { app, ...captured };
  };
  const accessLines = (lines: LogLine[]) => lines.filter((l) => l.msg === 'request');

  before(async () => {
    testDb = await createTestDatabase();
    temporal = await connectTestClient();
    taskSignals = createTaskSignals(testDb.url);
    const team = await createTeam(testDb.db, 'logged');
    token = team.token;
    agentToken = (await createServer(testDb.db, team.team.id, 'web-1')).agentToken;
  });

  after(async () => {
    await taskSignals.close();
    await temporal.connection.close();
    await testDb.drop();
  });

  it('gives each request an id, answers it in X-Request-Id and logs one access line with it', async () => {
    const { app, lines } = appLogging('info');
    const res = await app.request('/servers', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-request-id');
    assert.match(id ?? '', /^req_[a-z2-7]{16}$/);
    const [line, ...more] = accessLines(lines());
    assert.deepEqual(more, []);
    assert.equal(line!.level, 'info');
    assert.equal(line!.component, 'api');
    assert.equal(line!.requestId, id);
    assert.equal(line!.method, 'GET');
    assert.equal(line!.path, '/servers');
    assert.equal(line!.status, 200);
    assert.equal(typeof line!.ms, 'number');

    const other = await app.request('/servers', { headers: { authorization: `Bearer ${token}` } });
    assert.notEqual(other.headers.get('x-request-id'), id, 'every request its own id');
  });

  it('keeps a sane incoming X-Request-Id and replaces any other', async () => {
    const { app, lines } = appLogging('info');
    const sent = await app.request('/healthz', { headers: { 'x-request-id': 'lb-7f3a_9c' } });
    assert.equal(sent.headers.get('x-request-id'), 'lb-7f3a_9c');
    for (const bad of ['a'.repeat(65), 'x" injected', 'ok\u00e9', '{"level":"fatal"}']) {
      const res = await app.request('/healthz', { headers: { 'x-request-id': bad } });
      assert.match(res.headers.get('x-request-id') ?? '', /^req_[a-z2-7]{16}$/, bad);
    }
    // /healthz is logged at debug: at info nothing of these requests is said.
    assert.deepEqual(accessLines(lines()), []);
  });

  it('names the request id in every error answer, and logs the error with it', async () => {
    const { app, lines } = appLogging('info');
    const headers = { authorization: `Bearer ${token}`, 'x-request-id': 'client-1' };
    const cases = [
      [await app.request('/environments/env_aaaaaaaaaaaaaaaa', { headers }), 404, 'environment_not_found'],
      [await app.request('/servers', { headers: { 'x-request-id': 'client-1' } }), 401, 'unauthorized'],
      [await app.request('/no/such/route', { headers }), 404, 'route_not_found'],
      [
        await app.request('/servers', {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: '{}',
        }),
        422,
        'validation_failed',
      ],
    ] as const;
    for (const [res, status, code] of cases) {
      const body = (await res.json()) as ErrorAnswer;
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(body.error.code, code);
      assert.equal(body.error.requestId, 'client-1');
      assert.equal(res.headers.get('x-request-id'), 'client-1');
    }
    assert.deepEqual(
      accessLines(lines()).map((l) => [l.status, l.requestId]),
      cases.map(([, status]) => [status, 'client-1']),
    );

    // No database behind the API: an unhandled error, logged with its stack under the request's id,
    // never answered in detail.
    const gone = createDb(`${stack.pgBaseUrl}/no_such_database`, { max: 1 });
    const broken = appLogging('info', gone);
    const res = await broken.app.request('/servers', { headers });
    const body = (await res.json()) as ErrorAnswer;
    assert.equal(res.status, 500);
    assert.deepEqual(body, { error: { code: 'internal', message: 'internal error', requestId: 'client-1' } });
    const error = broken.lines().find((l) => l.level === 'error')!;
    assert.equal(error.requestId, 'client-1');
    assert.equal(error.path, '/servers');
    assert.match((error.err as { stack: string }).stack, /\n\s+at /);
    assert.equal(accessLines(broken.lines())[0]!.status, 500);
    await gone.destroy();
  });

  it('logs the agents’ long polls at debug only, and no token, header or query value at any level', async () => {
    const quiet = appLogging('info');
    const verbose = appLogging('trace');
    const secretQuery = randomBytes(12).toString('hex');
    for (const { app } of [quiet, verbose]) {
      const claim = await app.request('/agent/tasks/claim', {
        method: 'POST',
        headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ waitSeconds: 0 }),
      });
      assert.equal(claim.status, 204);
      const listed = await app.request(`/servers?token=${secretQuery}&limit=5`, {
        headers: { authorization: `Bearer ${token}`, cookie: `session=${secretQuery}` },
      });
      assert.equal(listed.status, 200, await listed.text());
    }
    assert.deepEqual(
      accessLines(quiet.lines()).map((l) => l.path),
      ['/servers'],
    );
    const claim = accessLines(verbose.lines()).find((l) => l.path === '/agent/tasks/claim')!;
    assert.equal(claim.level, 'debug');
    assert.equal(claim.status, 204);
    for (const text of [quiet.text(), verbose.text()]) {
      for (const secret of [token, agentToken, secretQuery, 'Bearer', 'authorization'])
        assert.ok(!text.toLowerCase().includes(secret.toLowerCase()), `${secret} is in the log`);
    }
  });
});

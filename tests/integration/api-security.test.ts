import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { createApp } from '../../api/app.ts';
import { createLogger } from '../../common/log.ts';
import { createDestination } from '../../db/destinations.data.ts';
import { createEnvironment } from '../../db/environments.data.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeamKey } from '../../db/team-keys.data.ts';
import { maxStreamsPerToken } from '../../api/operations.routes.ts';
import { createOperation } from '../../db/operations.data.ts';
import { maxWebhooksPerTeam } from '../../db/webhooks.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { createTaskSignals, type TaskSignals } from '../../db/agent-task-signals.ts';
import { Vault } from '../../db/vault.ts';
import { destinationStores } from '../../db/destination-stores.ts';
import { notingAnswers } from '../helpers/api-answers.ts';
import { connectTestClient, createTestDatabase, uniqueName } from '../helpers/stack.ts';

/**
 * The request-level security matrix: every team route in the OpenAPI document, called without a
 * token, with a malformed one, with a revoked-looking one and with another team's token.
 */
describe('API security', () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let temporal: Client;
  let taskSignals: TaskSignals;
  let app: ReturnType<typeof createApp>;
  const a = {
    token: '',
    serverId: '',
    envId: '',
    tokenId: '',
    opId: 'op_aaaaaaaaaaaaaaaa',
    keyFingerprint: '',
    publicKey: '',
    destinationId: '',
  };
  const b = { token: '', serverId: '', agentToken: '' };

  before(async () => {
    testDb = await createTestDatabase();
    temporal = await connectTestClient();
    const vault = new Vault(randomBytes(32));
    app = notingAnswers(
      createApp({
        db: testDb.db,
        vault,
        storeOf: destinationStores(testDb.db, vault),
        temporal,
        controlTaskQueue: uniqueName('control'),
        agentStaleAfterMs: 20_000,
        taskSignals: (taskSignals = createTaskSignals(testDb.url)),
        log: createLogger('api', { level: 'silent' }),
      }),
    );
    const teamA = await createTeam(testDb.db, 'a');
    const teamB = await createTeam(testDb.db, 'b');
    a.token = teamA.token;
    b.token = teamB.token;
    a.serverId = (await createServer(testDb.db, teamA.team.id, 'a1')).server.id;
    const keyA = await createTeamKey(testDb.db, vault, teamA.team.id);
    a.keyFingerprint = keyA.fingerprint;
    a.publicKey = keyA.publicKey.toString('hex');
    const serverB = await createServer(testDb.db, teamB.team.id, 'b1');
    b.serverId = serverB.server.id;
    b.agentToken = serverB.agentToken;
    a.envId = (
      await createEnvironment(testDb.db, teamA.team.id, {
        name: 'shop',
        serverId: a.serverId,
        services: [
          {
            name: 'web',
            command: 'true',
            env: { SECRET: 'x' },
            volumes: [],
            healthTimeoutSeconds: 5,
            stopSignal: 'SIGTERM',
            stopTimeoutSeconds: 5,
          },
        ],
      })
    ).id;
    // Stored directly: the API would first check the bucket, which is not what this file tests.
    a.destinationId = (
      await createDestination(
        testDb.db,
        vault,
        teamA.team.id,
        {
          name: 'offsite',
          endpoint: 'http://127.0.0.1:9',
          region: 'us-east-1',
          bucket: 'a-private-bucket',
          prefix: 'a-prefix',
          pathStyle: true,
          accessKeyId: 'A-ACCESS-KEY-ID',
          secretAccessKey: 'A-SECRET-ACCESS-KEY',
        },
        new Date(),
      )
    ).id;
    const tokens = (await (await call('GET', '/team/tokens', a.token)).json()) as {
      tokens: { id: string }[];
    };
    a.tokenId = tokens.tokens[0]!.id;
  });

  after(async () => {
    await temporal.connection.close();
    await taskSignals.close();
    await testDb.drop();
  });

  function call(method: string, path: string, token?: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = token.startsWith('Bearer') ? token : `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return Promise.resolve(
      app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
    );
  }

  async function teamRoutes(): Promise<{ method: string; path: string }[]> {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => !path.startsWith('/agent'))
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path })));
    assert.ok(
      routes.length >= 15,
      `expected the whole API in the OpenAPI document, got ${routes.length} routes`,
    );
    return routes;
  }

  /** Fills {id} with team A's real ids, so a leak to team B would be a real one. */
  function concrete(path: string): string {
    const id = path.startsWith('/servers')
      ? a.serverId
      : path.startsWith('/environments')
        ? a.envId
        : path.startsWith('/team/tokens')
          ? a.tokenId
          : path.startsWith('/destinations')
            ? a.destinationId
            : a.opId;
    return path.replace('{id}', id);
  }

  it('answers 401 without a token, with a malformed one and with an unknown one, on every route', async () => {
    for (const { method, path } of await teamRoutes()) {
      for (const token of [
        undefined,
        'Bearer',
        'Basic abc',
        'stt_unknown-token',
        'sta_wrong-kind',
        `${a.token}x`,
      ]) {
        const res = await call(
          method,
          concrete(path),
          token,
          method === 'GET' || method === 'DELETE' ? undefined : {},
        );
        assert.equal(res.status, 401, `${method} ${path} with ${token ?? 'no token'}`);
        const body = (await res.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'unauthorized');
      }
    }
  });

  it("never shows or changes team A's resources with team B's token", async () => {
    for (const { method, path } of await teamRoutes()) {
      const url = concrete(path);
      const res = await call(method, url, b.token, method === 'GET' || method === 'DELETE' ? undefined : {});
      const text = await res.text();
      assert.ok(res.status < 500, `${method} ${path}: ${res.status} ${text}`);
      // Anything of A's in the answer that B did not send itself would be a leak.
      for (const secretOfA of [
        a.serverId,
        a.envId,
        a.tokenId,
        a.keyFingerprint,
        a.publicKey,
        a.destinationId,
        'shop',
        'SECRET',
        'a-private-bucket',
        'a-prefix',
        'A-SECRET-ACCESS-KEY',
      ].filter((x) => !url.includes(x))) {
        assert.ok(!text.includes(secretOfA), `${method} ${path} leaked ${secretOfA}: ${text}`);
      }
      if (path.includes('{id}'))
        assert.ok([404, 422].includes(res.status), `${method} ${path}: ${res.status}`);
    }
    // Team A's things are all still there.
    assert.equal((await call('GET', `/environments/${a.envId}`, a.token)).status, 200);
    assert.equal((await call('GET', `/servers/${a.serverId}`, a.token)).status, 200);
    assert.equal((await call('GET', `/destinations/${a.destinationId}`, a.token)).status, 200);
  });

  it("refuses to place team B's environment on team A's server, or to deploy team A's environment", async () => {
    const place = await call('POST', '/environments', b.token, {
      name: 'intruder',
      serverId: a.serverId,
      services: [{ name: 'x', command: 'true' }],
    });
    assert.equal(place.status, 404);
    assert.equal(((await place.json()) as { error: { code: string } }).error.code, 'server_not_found');
    assert.equal((await call('POST', `/environments/${a.envId}/deploy`, b.token)).status, 404);
    assert.equal((await call('POST', `/environments/${a.envId}/stop`, b.token)).status, 404);
  });

  it("never hands an agent another server's environment, nor takes team tokens on agent routes or vice versa", async () => {
    const foreign = await call('GET', `/agent/environments/${a.envId}`, b.agentToken);
    assert.equal(foreign.status, 404);
    assert.ok(!(await foreign.text()).includes('SECRET'));
    assert.equal((await call('GET', `/agent/environments/${a.envId}`, a.token)).status, 401);
    assert.equal((await call('POST', '/agent/hello', a.token)).status, 401);
    assert.equal((await call('GET', '/servers', b.agentToken)).status, 401);
    const hello = (await (
      await call('POST', '/agent/hello', b.agentToken, { publicKey: '11'.repeat(32) })
    ).json()) as { serverId: string };
    assert.deepEqual(hello.serverId, b.serverId);
  });

  it('gives a clear 4xx, never a 500, for bad input', async () => {
    const cases: {
      method: string;
      path: string;
      body?: string;
      type?: string;
      status: number;
      code: string;
      field?: string;
    }[] = [
      { method: 'POST', path: '/servers', body: '{"name": ', status: 400, code: 'malformed_request' },
      {
        method: 'POST',
        path: '/servers',
        body: '{"name":"ok","extra":1}',
        status: 422,
        code: 'validation_failed',
        field: 'extra',
      },
      {
        method: 'POST',
        path: '/servers',
        body: '{"name":"Bad Name"}',
        status: 422,
        code: 'validation_failed',
        field: 'name',
      },
      { method: 'POST', path: '/servers', body: '{}', status: 422, code: 'validation_failed', field: 'name' },
      { method: 'POST', path: '/servers', body: '[]', status: 422, code: 'validation_failed' },
      {
        method: 'POST',
        path: '/servers',
        body: 'name=x',
        type: 'application/x-www-form-urlencoded',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        method: 'POST',
        path: '/servers',
        body: `{"name":"${'a'.repeat(2 * 1024 * 1024)}"}`,
        status: 413,
        code: 'body_too_large',
      },
      {
        method: 'POST',
        path: '/environments',
        body: JSON.stringify({
          name: 'e1',
          serverId: 'srv_x',
          services: [{ name: 'web', command: 'x', healthCheck: { type: 'tcp', port: 99999 } }],
        }),
        status: 422,
        code: 'validation_failed',
        field: 'services.0.healthCheck.port',
      },
      { method: 'GET', path: '/servers/srv_doesnotexist0000', status: 404, code: 'server_not_found' },
      { method: 'GET', path: '/environments/nope', status: 404, code: 'environment_not_found' },
      { method: 'GET', path: '/operations/op_unknown', status: 404, code: 'operation_not_found' },
      { method: 'DELETE', path: '/team/tokens/tok_unknown', status: 404, code: 'token_not_found' },
      { method: 'GET', path: '/nowhere', status: 404, code: 'route_not_found' },
      // PostgreSQL refuses a NUL in text with an error: an id carrying one must not reach a query.
      { method: 'GET', path: '/servers/srv_%00', status: 422, code: 'validation_failed', field: 'id' },
      {
        method: 'POST',
        path: '/environments/env_x/backups',
        body: '{"destinationId":"dst_\\u0000"}',
        status: 422,
        code: 'validation_failed',
        field: 'destinationId',
      },
      {
        method: 'POST',
        path: '/team/tokens',
        body: '{"name":"a\\u0000b"}',
        status: 422,
        code: 'validation_failed',
      },
      {
        method: 'POST',
        path: '/environments',
        body: JSON.stringify({
          name: 'nul',
          serverId: a.serverId,
          services: [{ name: 'web', command: 'echo \u0000' }],
        }),
        status: 422,
        code: 'validation_failed',
      },
      {
        method: 'PATCH',
        path: `/environments/${'x'.repeat(100)}`,
        body: '{}',
        status: 422,
        code: 'validation_failed',
        field: 'id',
      },
    ];
    for (const c of cases) {
      const res = await app.request(c.path, {
        method: c.method,
        headers: { authorization: `Bearer ${a.token}`, 'content-type': c.type ?? 'application/json' },
        body: c.body,
      });
      const body = (await res.json()) as { error: { code: string; message: string; field?: string } };
      assert.equal(
        res.status,
        c.status,
        `${c.method} ${c.path} ${c.body?.slice(0, 60)}: ${JSON.stringify(body)}`,
      );
      assert.equal(body.error.code, c.code);
      assert.ok(body.error.message.length > 0);
      if (c.field) assert.equal(body.error.field, c.field);
    }
  });

  it('refuses duplicate names with 409 and shows a token only once', async () => {
    const first = await call('POST', '/servers', a.token, { name: 'dup' });
    assert.equal(first.status, 201);
    const created = (await first.json()) as { agent: { token: string } };
    assert.match(created.agent.token, /^sta_/);
    const again = await call('POST', '/servers', a.token, { name: 'dup' });
    assert.equal(again.status, 409);
    const list = await (await call('GET', '/servers', a.token)).text();
    assert.ok(!list.includes(created.agent.token));

    const tok = (await (await call('POST', '/team/tokens', a.token, { name: 'ci' })).json()) as {
      id: string;
      token: string;
    };
    assert.equal((await call('GET', '/team', tok.token)).status, 200);
    assert.ok(!(await (await call('GET', '/team/tokens', a.token)).text()).includes(tok.token));
    assert.equal((await call('DELETE', `/team/tokens/${tok.id}`, a.token)).status, 204);
    assert.equal((await call('GET', '/team', tok.token)).status, 401);
  });

  it('caps a team’s webhooks, also against adds racing past the count', async () => {
    const team = await createTeam(testDb.db, 'many-hooks');
    const add = (i: number) =>
      call('POST', '/webhooks', team.token, { url: `https://hooks.example.com/${i}` });
    for (let i = 0; i < maxWebhooksPerTeam - 2; i++) assert.equal((await add(i)).status, 201);
    // Two places left, three asked for at once: two get them.
    const raced = await Promise.all([add(100), add(101), add(102)]);
    assert.deepEqual(raced.map((r) => r.status).sort(), [201, 201, 409]);
    const refused = (await (raced.find((r) => r.status === 409) as Response).json()) as {
      error: { code: string; message: string };
    };
    assert.equal(refused.error.code, 'webhook_limit');
    const listed = (await (await call('GET', '/webhooks?limit=200', team.token)).json()) as {
      webhooks: unknown[];
    };
    assert.equal(listed.webhooks.length, maxWebhooksPerTeam);
    assert.equal(
      (await call('POST', '/webhooks', a.token, { url: 'https://hooks.example.com/a' })).status,
      201,
      'another team’s count is its own',
    );
  });

  it('bounds the event streams a token holds, and ends them when the token is revoked', async () => {
    const teamId = (
      await testDb.db
        .selectFrom('environments')
        .select('team_id')
        .where('id', '=', a.envId)
        .executeTakeFirstOrThrow()
    ).team_id;
    // An operation that stays running: its stream would last as long.
    const op = await createOperation(testDb.db, {
      teamId,
      environmentId: a.envId,
      serverId: a.serverId,
      kind: 'backup',
      workflowId: uniqueName('never-ends'),
    });
    const made = (await (await call('POST', '/team/tokens', a.token, { name: 'watcher' })).json()) as {
      id: string;
      token: string;
    };
    const open = async (token: string) => {
      const res = await call('GET', `/operations/${op.id}/events`, token);
      if (res.status !== 200) return { status: res.status, body: await res.text() };
      const reader = res.body!.getReader();
      await reader.read(); // the first event
      return { status: 200, reader };
    };
    const streams = [];
    for (let i = 0; i < maxStreamsPerToken; i++) streams.push(await open(made.token));
    assert.deepEqual(new Set(streams.map((s) => s.status)), new Set([200]));
    const over = await open(made.token);
    assert.equal(over.status, 429);
    assert.match(over.body!, /too_many_streams/);
    const other = await open(a.token);
    assert.equal(other.status, 200, 'another token’s streams are its own');
    await other.reader!.cancel();

    assert.equal((await call('DELETE', `/team/tokens/${made.id}`, a.token)).status, 204);
    const started = Date.now();
    for (const s of streams) {
      // Read to the end: the stream closes within a token check (2 s), though the operation runs on.
      for (;;) if ((await s.reader!.read()).done) break;
    }
    assert.ok(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms`);
    assert.equal((await call('GET', `/operations/${op.id}`, a.token)).status, 200);
  });
});

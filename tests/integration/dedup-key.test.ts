import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
// First: it loads the API, whose zod must be extended for OpenAPI before any schema is made.
import { createApp } from '../../api/app.ts';
import type { LogLevel } from '../../common/config.ts';
import { createTaskSignals, type TaskSignals } from '../../db/agent-task-signals.ts';
import { destinationStores } from '../../db/destination-stores.ts';
import { createServer } from '../../db/servers.data.ts';
import { createTeamKey, openTeamSecretKey } from '../../db/team-keys.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { Vault } from '../../db/vault.ts';
import { dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { notingAnswers } from '../helpers/api-answers.ts';
import { capturedLogger } from '../helpers/log-lines.ts';
import { connectTestClient, createTestDatabase } from '../helpers/stack.ts';

/** GET /agent/dedup-key through app.request() on the real database. */
describe('an agent’s dedup key', () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let temporal: Client;
  let taskSignals: TaskSignals;
  const vault = new Vault(randomBytes(32));
  const teams = [
    { id: '', agentToken: '' },
    { id: '', agentToken: '' },
  ];
  let keyless = '';

  const appLogging = (level: LogLevel) => {
    const captured = capturedLogger('api', level);
    const app = createApp({
      db: testDb.db,
      vault,
      storeOf: destinationStores(testDb.db, vault),
      temporal,
      controlTaskQueue: 'unused',
      agentStaleAfterMs: 60_000,
      taskSignals,
      log: captured.log,
    });
    return { app: notingAnswers(app), ...captured };
  };
  const ask = (token: string, level: LogLevel = 'info') => {
    const { app, lines } = appLogging(level);
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    return { res: app.request('/agent/dedup-key', { headers }), lines };
  };
  const expectedKey = async (teamId: string) =>
    dedupKeyOf(await openTeamSecretKey(testDb.db, vault, teamId)).toString('hex');

  before(async () => {
    testDb = await createTestDatabase();
    temporal = await connectTestClient();
    taskSignals = createTaskSignals(testDb.url);
    for (const [i, team] of teams.entries()) {
      team.id = (await createTeam(testDb.db, `team-${i}`)).team.id;
      await createTeamKey(testDb.db, vault, team.id);
      team.agentToken = (await createServer(testDb.db, team.id, 'web-1')).agentToken;
    }
    const noKey = (await createTeam(testDb.db, 'no-key')).team.id;
    keyless = (await createServer(testDb.db, noKey, 'web-1')).agentToken;
  });

  after(async () => {
    await taskSignals?.close();
    await temporal?.connection.close();
    await testDb?.drop();
  });

  it('answers the calling agent’s own team’s key, uncached and never logged', async () => {
    const answered: string[] = [];
    for (const team of teams) {
      const { res, lines } = ask(team.agentToken, 'debug');
      const answer = await res;
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('cache-control'), 'no-store');
      const { dedupKey } = (await answer.json()) as { dedupKey: string };
      assert.equal(dedupKey, await expectedKey(team.id));
      assert.ok(!JSON.stringify(lines()).includes(dedupKey), 'the key is in the log');
      answered.push(dedupKey);
    }
    assert.notEqual(answered[0], answered[1]);
  });

  it('answers 404 to an agent whose team has no key yet, and 401 without an agent token', async () => {
    const none = await ask(keyless).res;
    assert.equal(none.status, 404);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'team_key_not_found');
    assert.equal((await ask('').res).status, 401);
  });
});

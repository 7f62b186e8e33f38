import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { agentEntry, runProgram } from '../helpers/processes.ts';
import { createTestDatabase, freePort, stack } from '../helpers/stack.ts';

/** Each program must stop at start with a message naming what is wrong and where it looked. */
describe('start-up errors', () => {
  const VAULT_MASTER_KEY = randomBytes(32).toString('base64');

  it('names a missing variable', async () => {
    const run = runProgram('api/main.ts', {});
    assert.equal(await run.exited, 2);
    assert.match(run.output(), /strackt-api: configuration error: DATABASE_URL is required but not set/);
  });

  it('names a malformed variable', async () => {
    const run = runProgram(agentEntry(), {
      STRACKT_API_URL: 'http://127.0.0.1:1',
      STRACKT_AGENT_TOKEN: 'sta_x',
      STRACKT_DATA_ROOT: 'relative/path',
    });
    assert.equal(await run.exited, 2);
    assert.match(run.output(), /STRACKT_DATA_ROOT is invalid: must be an absolute path/);
  });

  it('says PostgreSQL is unreachable, and where', async () => {
    const port = await freePort();
    const run = runProgram('api/main.ts', {
      DATABASE_URL: `postgres://strackt:hunter2@127.0.0.1:${port}/strackt`,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      VAULT_MASTER_KEY,
    });
    assert.equal(await run.exited, 1);
    assert.match(
      run.output(),
      new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}/strackt \\(DATABASE_URL\\)`),
    );
    assert.ok(!run.output().includes('hunter2'), 'the password stays out of the message');
  });

  it('says Temporal is unreachable, and where', async () => {
    const port = await freePort();
    const testDb = await createTestDatabase();
    try {
      for (const program of ['api/main.ts', 'worker/control-plane.main.ts']) {
        const run = runProgram(program, {
          DATABASE_URL: testDb.url,
          TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
          VAULT_MASTER_KEY,
        });
        assert.equal(await run.exited, 1, run.output());
        assert.match(
          run.output(),
          new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${port} \\(TEMPORAL_ADDRESS\\)`),
        );
      }
    } finally {
      await testDb.drop();
    }
  });

  it('says the control plane is unreachable when an agent cannot enrol', async () => {
    const port = await freePort();
    const run = runProgram(agentEntry(), {
      STRACKT_API_URL: `http://127.0.0.1:${port}`,
      STRACKT_AGENT_TOKEN: 'sta_x',
      STRACKT_DATA_ROOT: '/tmp',
    });
    assert.equal(await run.exited, 1);
    assert.match(
      run.output(),
      new RegExp(`enrolment with the control plane at http://127.0.0.1:${port} \\(STRACKT_API_URL\\) failed`),
    );
  });
});

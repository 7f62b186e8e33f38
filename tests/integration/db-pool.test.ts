import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { createDb } from '../../db/database.ts';
import { createTestDatabase } from '../helpers/stack.ts';

const testDb = await createTestDatabase();
after(() => testDb.drop());

it('ends its pool on destroy even with a query that does not answer', async () => {
  const db = createDb(testDb.url, { max: 2 });
  // A query that would hold its connection for an hour: a stopping process must not wait for it.
  const hanging = sql`select pg_sleep(3600)`.execute(db).then(
    () => 'answered',
    () => 'cut off',
  );
  await sql`select 1`.execute(db);
  await sleep(500);
  const waited = new AbortController();
  const ended = await Promise.race([
    db.destroy().then(() => 'ended'),
    sleep(60_000, 'still waiting after a minute', { signal: waited.signal }),
  ]);
  waited.abort();
  assert.equal(ended, 'ended');
  assert.equal(await hanging, 'cut off');
});

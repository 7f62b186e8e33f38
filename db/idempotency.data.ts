import { sql } from 'kysely';
import type { Db } from './database.ts';
import type { IdempotencyKey } from './tables/idempotency-key.table.ts';

/** How long a key answers its first result; after that it is free for any request. */
export const idempotencyKeptHours = 24;

/**
 * Takes a team's key for a request, or answers whoever holds it. Taken when the key is new, expired,
 * or held by the same request that has run longer than `abandonedAfterSeconds` without an answer (its
 * API process died mid-request). One statement, so two requests racing for a key cannot both take it.
 */
export async function takeIdempotencyKey(
  db: Db,
  claim: { teamId: string; key: string; requestHash: string; abandonedAfterSeconds: number },
): Promise<{ taken: true } | { taken: false; held: IdempotencyKey }> {
  const taken = await db
    .insertInto('idempotency_keys')
    .values({ team_id: claim.teamId, key: claim.key, request_hash: claim.requestHash })
    .onConflict((oc) =>
      oc
        .columns(['team_id', 'key'])
        .doUpdateSet({
          request_hash: claim.requestHash,
          status: null,
          location: null,
          body: null,
          created_at: sql`now()`,
        })
        .where((eb) =>
          eb.or([
            eb(
              'idempotency_keys.created_at',
              '<',
              sql<Date>`now() - make_interval(hours => ${idempotencyKeptHours})`,
            ),
            eb.and([
              eb('idempotency_keys.status', 'is', null),
              eb('idempotency_keys.request_hash', '=', claim.requestHash),
              eb(
                'idempotency_keys.created_at',
                '<',
                sql<Date>`now() - make_interval(secs => ${claim.abandonedAfterSeconds})`,
              ),
            ]),
          ]),
        ),
    )
    .returning('key')
    .executeTakeFirst();
  if (taken) return { taken: true };
  const held = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('team_id', '=', claim.teamId)
    .where('key', '=', claim.key)
    .executeTakeFirst();
  // Released between the two statements (its request failed): the caller may simply try again.
  if (!held) return takeIdempotencyKey(db, claim);
  return { taken: false, held };
}

/** The first request's answer, kept for its retries; `body` null when the answer held a secret. */
export async function recordIdempotentAnswer(
  db: Db,
  teamId: string,
  key: string,
  answer: { status: number; location: string | null; body: string | null },
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set(answer)
    .where('team_id', '=', teamId)
    .where('key', '=', key)
    .execute();
}

/** A request that did not succeed keeps nothing: its retry, corrected or not, runs anew. */
export async function releaseIdempotencyKey(db: Db, teamId: string, key: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('team_id', '=', teamId)
    .where('key', '=', key)
    .where('status', 'is', null)
    .execute();
}

export async function forgetExpiredIdempotencyKeys(db: Db): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', sql<Date>`now() - make_interval(hours => ${idempotencyKeptHours})`)
    .execute();
}

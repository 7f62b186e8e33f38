import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import {
  forgetExpiredIdempotencyKeys,
  idempotencyKeptHours,
  recordIdempotentAnswer,
  releaseIdempotencyKey,
  takeIdempotencyKey,
} from '../db/idempotency.data.ts';
import type { IdempotencyKey } from '../db/tables/idempotency-key.table.ts';
import type { TeamEnv } from './router.ts';

export const idempotencyHeader = 'Idempotency-Key';
// Visible ASCII, as the IETF draft and Stripe take it; long enough for a UUID with a prefix.
const keyFormat = /^[\x21-\x7e]{1,255}$/;
// No request of this API runs this long: a key held longer without an answer lost its API process.
const abandonedAfterSeconds = 120;
const sweepEveryMs = 10 * 60_000;

const requestHash = (method: string, url: URL, body: string) =>
  createHash('sha256').update(`${method} ${url.pathname}${url.search}\n`).update(body).digest('hex');

/**
 * A team's POST with an Idempotency-Key runs once: a retry with the same key and request within 24 h
 * gets the first answer again (marked Idempotent-Replayed), without starting or creating anything. An
 * answer the handler marked `Cache-Control: no-store` (it holds a secret shown once) is not kept, so
 * its retry is told the key was used instead. Only successes are kept: a failed request's key is free.
 */
export function idempotentPosts(db: Db): MiddlewareHandler<TeamEnv> {
  let sweptAt = 0;
  return async (c, next) => {
    const key = c.req.header(idempotencyHeader);
    if (c.req.method !== 'POST' || key === undefined) return next();
    if (!keyFormat.test(key))
      throw new DomainError(
        'invalid',
        'validation_failed',
        `${idempotencyHeader}: must be 1 to 255 visible ASCII characters`,
        idempotencyHeader,
      );
    if (Date.now() - sweptAt > sweepEveryMs) {
      sweptAt = Date.now();
      await forgetExpiredIdempotencyKeys(db);
    }
    const teamId = c.get('teamId');
    const hash = requestHash(c.req.method, new URL(c.req.url), await c.req.text());
    const claim = await takeIdempotencyKey(db, { teamId, key, requestHash: hash, abandonedAfterSeconds });
    if (!claim.taken) return replay(claim.held, hash);

    // Errors reach here as the error handler's answer, not as exceptions.
    await next();
    const res = c.res;
    if (res.status < 200 || res.status > 299) {
      await releaseIdempotencyKey(db, teamId, key);
      return;
    }
    const secret = /\bno-store\b/i.test(res.headers.get('cache-control') ?? '');
    await recordIdempotentAnswer(db, teamId, key, {
      status: res.status,
      location: res.headers.get('location'),
      body: secret ? null : await res.clone().text(),
    });
  };
}

/** Answers a retry from what its key holds. */
function replay(held: IdempotencyKey, hash: string): Response {
  if (held.request_hash !== hash)
    throw new DomainError(
      'invalid',
      'idempotency_key_reused',
      `${idempotencyHeader}: this key was used for another request (method, path or body) in the last ${idempotencyKeptHours} h`,
      idempotencyHeader,
    );
  if (held.status === null)
    throw new DomainError(
      'conflict',
      'idempotency_key_in_use',
      `the first request with this ${idempotencyHeader} is still running; retry once it has answered`,
    );
  if (held.body === null)
    // Its answer held a secret shown only once: said so, with where the created thing is.
    throw new DomainError(
      'conflict',
      'idempotent_answer_withheld',
      `the first request with this ${idempotencyHeader} succeeded (${held.status}${held.location ? `, ${held.location}` : ''}); ` +
        'its answer held a secret shown only once, so it is not repeated',
    );
  const headers = new Headers({ 'idempotent-replayed': 'true', 'content-type': 'application/json' });
  if (held.location) headers.set('location', held.location);
  return new Response(held.body, { status: held.status, headers });
}

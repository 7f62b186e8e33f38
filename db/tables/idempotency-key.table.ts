import type { Generated, Selectable } from 'kysely';

/**
 * A team's request under an Idempotency-Key: `status` null while the first one runs; then its answer,
 * with `body` null when the answer held a secret (kept nowhere, so never repeated).
 */
export interface IdempotencyKeyTable {
  team_id: string;
  key: string;
  /** SHA-256 of the method, path and body: the same key with another request is refused. */
  request_hash: string;
  status: number | null;
  location: string | null;
  body: string | null;
  created_at: Generated<Date>;
}
export type IdempotencyKey = Selectable<IdempotencyKeyTable>;

import { newId } from '../common/ids.ts';
import { hashToken, newSecretToken } from '../common/secret-tokens.ts';
import type { Db } from './database.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import type { ApiToken } from './tables/api-token.table.ts';
import type { Team } from './tables/team.table.ts';

export async function createTeam(db: Db, name: string): Promise<{ team: Team; token: string }> {
  return db.transaction().execute(async (trx) => {
    const team = await trx
      .insertInto('teams')
      .values({ id: newId('team'), name })
      .returningAll()
      .executeTakeFirstOrThrow();
    const { token } = await createApiToken(trx, team.id, 'admin');
    return { team, token };
  });
}

export async function getTeam(db: Db, id: string): Promise<Team | undefined> {
  return db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function createApiToken(
  db: Db,
  teamId: string,
  name: string,
): Promise<{ row: ApiToken; token: string }> {
  const token = newSecretToken('stt');
  const row = await db
    .insertInto('api_tokens')
    .values({ id: newId('tok'), team_id: teamId, name, token_hash: hashToken(token), last_used_at: null })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { row, token };
}

/**
 * A token's use is noted at most once a minute: written on every request, it made each of them wait
 * for a row lock and a commit's flush (the backups overview's p99 under bench:load).
 */
const usedEveryMs = 60_000;

/** The team and token a bearer token is, if it is one (not revoked); notes its use. */
export async function teamForToken(
  db: Db,
  token: string,
): Promise<{ teamId: string; tokenId: string } | undefined> {
  const row = await db
    .selectFrom('api_tokens')
    .select(['team_id', 'id', 'last_used_at'])
    .where('token_hash', '=', hashToken(token))
    .executeTakeFirst();
  if (!row) return undefined;
  const now = new Date();
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > usedEveryMs)
    await db
      .updateTable('api_tokens')
      .set({ last_used_at: now })
      .where('id', '=', row.id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', now)]))
      .execute();
  return { teamId: row.team_id, tokenId: row.id };
}

/** Whether a token still exists: a long-lived answer (an event stream) ends when its token is revoked. */
export async function tokenValid(db: Db, tokenId: string): Promise<boolean> {
  return !!(await db.selectFrom('api_tokens').select('id').where('id', '=', tokenId).executeTakeFirst());
}

export function apiTokensPage(db: Db, teamId: string, page: PageRequest): Promise<Page<ApiToken>> {
  return keysetPage(
    db.selectFrom('api_tokens').selectAll().where('team_id', '=', teamId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

export async function deleteApiToken(db: Db, teamId: string, id: string): Promise<boolean> {
  const res = await db
    .deleteFrom('api_tokens')
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}

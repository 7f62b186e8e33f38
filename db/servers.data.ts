import { presenceOf, type Presence } from '../common/agent-presence.ts';
import { DomainError, isUniqueViolation, notFound } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { hashToken, newSecretToken } from '../common/secret-tokens.ts';
import type { Db } from './database.ts';
import { keysetPage, type Page, type PageRequest } from './keyset.ts';
import type { Server } from './tables/server.table.ts';

export async function createServer(
  db: Db,
  teamId: string,
  name: string,
): Promise<{ server: Server; agentToken: string }> {
  const agentToken = newSecretToken('sta');
  try {
    const server = await db
      .insertInto('servers')
      .values({
        id: newId('srv'),
        team_id: teamId,
        name,
        agent_token_hash: hashToken(agentToken),
        enrolled_at: null,
        last_seen_at: null,
        agent_public_key: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { server, agentToken };
  } catch (err) {
    if (isUniqueViolation(err, 'servers_team_name')) {
      throw new DomainError(
        'conflict',
        'name_taken',
        `name: a server named "${name}" already exists in this team`,
      );
    }
    throw err;
  }
}

/**
 * A new agent token for a server (lost, or the server was compromised); the old one stops working at
 * once. The pinned agent key goes with it: whoever holds the new token enrols the next key, and tasks
 * the old holder had claimed are no longer its to report on.
 */
export async function rotateAgentToken(db: Db, serverId: string): Promise<string> {
  const agentToken = newSecretToken('sta');
  await db
    .updateTable('servers')
    .set({ agent_token_hash: hashToken(agentToken), agent_public_key: null, enrolled_at: null })
    .where('id', '=', serverId)
    .execute();
  return agentToken;
}

export function serversPage(db: Db, teamId: string, page: PageRequest): Promise<Page<Server>> {
  return keysetPage(
    db.selectFrom('servers').selectAll().where('team_id', '=', teamId),
    { at: 'created_at', id: 'id' },
    page,
  );
}

/** A team's server; another team's server is reported as not found, never as forbidden. */
/** The team's server, if it has one by that id. */
export function findServer(db: Db, teamId: string, id: string): Promise<Server | undefined> {
  return db
    .selectFrom('servers')
    .selectAll()
    .where('team_id', '=', teamId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function getServer(db: Db, teamId: string, id: string): Promise<Server> {
  const server = await findServer(db, teamId, id);
  if (!server) throw notFound('server', id);
  return server;
}

export async function serverForAgentToken(db: Db, token: string): Promise<Server | undefined> {
  return db
    .selectFrom('servers')
    .selectAll()
    .where('agent_token_hash', '=', hashToken(token))
    .executeTakeFirst();
}

/**
 * Enrolment records the agent's public key: a restore's data key is re-sealed to it, nothing else.
 * The first key is pinned: another key with the same token is refused (a stolen token cannot redirect
 * sealed keys to its own), until the team rotates the token. False when another key is pinned.
 */
export async function enrolAgentKey(db: Db, serverId: string, agentPublicKey: string): Promise<boolean> {
  const row = await db
    .updateTable('servers')
    .set({ enrolled_at: new Date(), agent_public_key: agentPublicKey, last_seen_at: new Date() })
    .where('id', '=', serverId)
    .where((eb) => eb.or([eb('agent_public_key', 'is', null), eb('agent_public_key', '=', agentPublicKey)]))
    .executeTakeFirst();
  return row.numUpdatedRows > 0n;
}

export async function recordLastSeen(db: Db, serverId: string, at: Date): Promise<void> {
  await db
    .updateTable('servers')
    .set({ last_seen_at: at })
    .where('id', '=', serverId)
    .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', at)]))
    .execute();
}

/** Whether a server's agent polled recently; a server of no team is never connected. */
export async function agentPresence(db: Db, serverId: string, staleAfterMs: number): Promise<Presence> {
  const row = await db
    .selectFrom('servers')
    .select('last_seen_at')
    .where('id', '=', serverId)
    .executeTakeFirst();
  return presenceOf(row?.last_seen_at ?? null, staleAfterMs);
}

export async function deleteServer(db: Db, teamId: string, id: string): Promise<void> {
  await getServer(db, teamId, id);
  const used = await db
    .selectFrom('environments')
    .select('name')
    .where('server_id', '=', id)
    .executeTakeFirst();
  if (used) {
    throw new DomainError('conflict', 'server_in_use', `server ${id} still hosts environment "${used.name}"`);
  }
  await db.deleteFrom('servers').where('id', '=', id).execute();
}

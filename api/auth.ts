import type { MiddlewareHandler } from 'hono';
import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { recordLastSeen, serverForAgentToken } from '../db/servers.data.ts';
import type { Server } from '../db/tables/server.table.ts';
import { teamForToken } from '../db/teams.data.ts';
import type { TeamEnv } from './router.ts';

export type AgentEnv = { Variables: { server: Server } };

const seenEveryMs = 2_000;

const unauthorized = (message: string) => new DomainError('unauthorized', 'unauthorized', message);

function bearer(header: string | undefined, prefix: 'stt' | 'sta'): string {
  if (!header) throw unauthorized('missing Authorization: Bearer token');
  const match = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header);
  if (!match || !match[1]!.startsWith(`${prefix}_`)) throw unauthorized('malformed Authorization header');
  return match[1]!;
}

/** Team routes: the token decides the team, and every query below is scoped to it. */
export function requireTeam(db: Db): MiddlewareHandler<TeamEnv> {
  return async (c, next) => {
    const auth = await teamForToken(db, bearer(c.req.header('authorization'), 'stt'));
    if (!auth) throw unauthorized('invalid or revoked token');
    c.set('teamId', auth.teamId);
    c.set('tokenId', auth.tokenId);
    await next();
  };
}

/** Agent routes: an agent token names exactly one server, hence one team. */
export function requireAgent(db: Db): MiddlewareHandler<AgentEnv> {
  return async (c, next) => {
    const server = await serverForAgentToken(db, bearer(c.req.header('authorization'), 'sta'));
    if (!server) throw unauthorized('invalid or revoked agent token');
    // Any call of an agent shows it connected; written at most every few seconds per server.
    const now = new Date();
    if (!server.last_seen_at || now.getTime() - server.last_seen_at.getTime() > seenEveryMs)
      await recordLastSeen(db, server.id, now);
    c.set('server', server);
    await next();
  };
}

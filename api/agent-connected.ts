import { DomainError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { agentPresence } from '../db/servers.data.ts';
import type { Server } from '../db/tables/server.table.ts';

/** Refuses, before anything is touched, a server whose agent is not connected now (409). */
export async function requireAgentConnected(
  deps: { db: Db; agentStaleAfterMs: number },
  serverId: string,
): Promise<void> {
  const presence = await agentPresence(deps.db, serverId, deps.agentStaleAfterMs);
  if (!presence.connected) {
    throw new DomainError(
      'conflict',
      'server_disconnected',
      `server ${serverId} has no connected agent (last seen ${presence.lastSeenAt ?? 'never'}); start its agent and retry`,
    );
  }
}

/** A server that can read a snapshot: its agent connected and enrolled with a key to seal data keys to. */
export async function requireEnrolledAgent(
  deps: { db: Db; agentStaleAfterMs: number },
  server: Pick<Server, 'id' | 'agent_public_key'>,
): Promise<void> {
  await requireAgentConnected(deps, server.id);
  if (!server.agent_public_key)
    throw new DomainError(
      'conflict',
      'agent_not_enrolled',
      `server ${server.id} runs an agent that has not enrolled with a key; restart it with this version`,
    );
}

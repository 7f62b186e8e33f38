import type { Client } from '@temporalio/client';
import { agentPresence } from '../common/agent-presence.ts';
import { DomainError } from '../common/errors.ts';

/** Refuses, before anything is touched, a server whose agent is not connected now (409). */
export async function requireAgentConnected(
  deps: { temporal: Client; agentStaleAfterMs: number },
  serverId: string,
): Promise<void> {
  const presence = await agentPresence(deps.temporal, serverId, deps.agentStaleAfterMs);
  if (!presence.connected) {
    throw new DomainError(
      'conflict',
      'server_disconnected',
      `server ${serverId} has no connected agent (last seen ${presence.lastSeenAt ?? 'never'}); start its agent and retry`,
    );
  }
}

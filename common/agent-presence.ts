export interface Presence {
  connected: boolean;
  lastSeenAt: string | null;
}

/**
 * Whether a server's agent is connected: it polled the API for tasks (or reported on one) recently.
 * An idle agent re-polls well within the stale window (the API holds a poll for at most a third of
 * it), so an agent not seen for the whole window is gone.
 */
export function presenceOf(lastSeenAt: Date | null, staleAfterMs: number, now = Date.now()): Presence {
  return {
    connected: lastSeenAt !== null && now - lastSeenAt.getTime() <= staleAfterMs,
    lastSeenAt: lastSeenAt?.toISOString() ?? null,
  };
}

/** Each connected server's agent polls a queue only it serves, so host-bound work lands on that host. */
export function agentTaskQueue(serverId: string): string {
  return `agent-${serverId}`;
}

export const defaultControlTaskQueue = 'strackt-control';

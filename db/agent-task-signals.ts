import postgres from 'postgres';
import { agentTaskChannel } from './agent-tasks.data.ts';

export interface TaskSignals {
  /** Resolves when a task for the server is announced after this call, or after `ms`, or on abort. */
  next(serverId: string, ms: number, signal?: AbortSignal): { done: Promise<void>; cancel: () => void };
  close(): Promise<void>;
}

/**
 * Wakes the API's held agent polls when a task is enqueued anywhere (LISTEN/NOTIFY, so every API
 * replica hears every control-plane worker). One connection per process; postgres.js re-listens after
 * a reconnect, and a poll re-checks the table on each wake-up or timeout, so a lost notice only delays.
 */
export function createTaskSignals(databaseUrl: string): TaskSignals {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  const waiters = new Map<string, Set<() => void>>();
  const listening = sql.listen(agentTaskChannel, (serverId) => {
    for (const wake of waiters.get(serverId) ?? []) wake();
  });
  // An unhandled rejection would end the process; a failed LISTEN degrades to the polls' timeouts.
  listening.catch(() => {});

  return {
    next(serverId, ms, signal) {
      let wake!: () => void;
      const done = new Promise<void>((resolve) => (wake = resolve));
      const set = waiters.get(serverId) ?? new Set();
      waiters.set(serverId, set);
      set.add(wake);
      const timer = setTimeout(wake, ms);
      signal?.addEventListener('abort', wake, { once: true });
      const cancel = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', wake);
        set.delete(wake);
        if (set.size === 0 && waiters.get(serverId) === set) waiters.delete(serverId);
        wake();
      };
      void done.then(cancel);
      return { done, cancel };
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
